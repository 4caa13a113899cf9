"""Weights from the Hugging Face hub at a pinned commit, through the real huggingface_hub.

``snapshot_download`` resumes interrupted files and lays them out in the hub cache
layout the serving containers read (``HF_HUB_CACHE`` on the volume); hf_xet speeds
transfers where installed. The client checks sizes only, so every file is then
checked against the hash the hub publishes for it (sha256 for LFS files, the git blob
sha1 otherwise): a mismatch is removed and fetched again once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from fnmatch import fnmatch
from pathlib import Path
from typing import Literal

from modelfleet.errors import FleetError
from modelfleet.spec.weights import HuggingFaceWeights
from modelfleet.volumes.layout import WeightsLocation
from modelfleet.volumes.manifest import sha256_file


class HubSourceError(FleetError):
    """The hub refused or could not deliver the pinned revision."""


def _hub_token() -> str | bool:
    # False (not None) tells huggingface_hub not to look for a stored login either.
    return os.environ.get("HF_TOKEN") or False


def _endpoint() -> str | None:
    # huggingface_hub reads HF_ENDPOINT only at import; pass it explicitly so a later
    # change (a test's loopback hub, a mirror) is honoured.
    return os.environ.get("HF_ENDPOINT")


def expected_files(weights: HuggingFaceWeights, *, model_file: Path) -> dict[str, tuple[int, str, str]]:
    """path -> (size, hash kind, hash) of the files vLLM needs at the pinned revision."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    api = HfApi(endpoint=_endpoint(), token=_hub_token())
    with _translated_errors(weights, model_file):
        tree = list(api.list_repo_tree(weights.repo, revision=weights.revision, recursive=True, expand=False))
    files: dict[str, tuple[int, str, str]] = {}
    for item in tree:
        if not isinstance(item, RepoFile) or not _wanted(item.path, weights):
            continue
        if item.lfs is not None:
            files[item.path] = (item.size, "sha256", item.lfs.sha256)
        else:
            files[item.path] = (item.size, "git-sha1", item.blob_id)
    if not files:
        raise HubSourceError(
            f"{model_file}: weights.allow_patterns: no file of {weights.repo}@{weights.revision[:12]} matches "
            f"{weights.allow_patterns}"
        )
    return files


def download(weights: HuggingFaceWeights, where: WeightsLocation, *, model_file: Path, progress: bool) -> None:
    """Download (or resume) the pinned revision into the volume's hub cache layout, hash-checked."""
    from huggingface_hub import snapshot_download

    expected = expected_files(weights, model_file=model_file)
    _check_free_space(where.root, expected, where.snapshot)
    for attempt in (1, 2):
        with _translated_errors(weights, model_file):
            snapshot_download(
                weights.repo,
                revision=weights.revision,
                cache_dir=str(where.root),
                allow_patterns=weights.allow_patterns,
                ignore_patterns=weights.ignore_patterns or None,
                token=_hub_token(),
                endpoint=_endpoint(),
                tqdm_class=None if progress else _Silent,
            )
        bad = [path for path, want in expected.items() if not _matches(where.snapshot / path, *want)]
        if not bad:
            return
        for path in bad:
            _remove_cached(where.snapshot / path)
        if attempt == 2:
            raise HubSourceError(
                f"{model_file}: weights: {', '.join(bad)} of {weights.repo}@{weights.revision[:12]} did not match the "
                "hub's hash twice; the files were removed, nothing is marked seeded"
            )


def _matches(file: Path, size: int, kind: str, digest: str) -> bool:
    if not file.is_file() or file.stat().st_size != size:
        return False
    if kind == "sha256":
        return sha256_file(file) == digest
    blob = hashlib.sha1(f"blob {size}\0".encode())
    with file.open("rb") as handle:
        while chunk := handle.read(8 * 2**20):
            blob.update(chunk)
    return blob.hexdigest() == digest


def _remove_cached(link: Path) -> None:
    """Remove a snapshot entry and the blob it points to, so the next download fetches it again."""
    target = link.resolve() if link.is_symlink() else None
    link.unlink(missing_ok=True)
    if target is not None:
        target.unlink(missing_ok=True)


def _wanted(path: str, weights: HuggingFaceWeights) -> bool:
    allowed = any(fnmatch(path, p) for p in weights.allow_patterns)
    return allowed and not any(fnmatch(path, p) for p in weights.ignore_patterns)


def _check_free_space(root: Path, expected: dict[str, tuple[int, str, str]], snapshot: Path) -> None:
    missing = sum(size for path, (size, _, _) in expected.items() if not (snapshot / path).is_file())
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if missing > free:
        raise HubSourceError(
            f"not enough disk space on {root}: the download needs {missing / 1e9:.1f} GB, {free / 1e9:.1f} GB are free"
        )


class _Silent:
    """A tqdm stand-in that draws nothing (huggingface_hub accepts any tqdm-like class)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *args: object) -> None:
        pass


class _translated_errors:
    """Turn huggingface_hub's typed errors into one line naming the file, field and fix."""

    def __init__(self, weights: HuggingFaceWeights, model_file: Path) -> None:
        self.weights, self.model_file = weights, model_file

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> Literal[False]:
        if error is None:
            return False
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

        repo, rev, file = self.weights.repo, self.weights.revision, self.model_file
        if isinstance(error, GatedRepoError):
            hint = (
                "HF_TOKEN is set but has no access: accept the license on the hub"
                if os.environ.get("HF_TOKEN")
                else ("set HF_TOKEN (locally) or weights.token_secret (a Modal secret holding HF_TOKEN)")
            )
            raise HubSourceError(f"{file}: weights.repo: {repo} is gated; {hint}") from None
        if isinstance(error, RevisionNotFoundError):
            raise HubSourceError(
                f"{file}: weights.revision: {rev} is not a commit of {repo}; copy one from its commit history"
            ) from None
        if isinstance(error, RepositoryNotFoundError):
            raise HubSourceError(f"{file}: weights.repo: {repo} does not exist (or is private: set HF_TOKEN)") from None
        if isinstance(error, OSError) and not isinstance(error, FleetError):
            raise HubSourceError(f"{file}: weights: download of {repo}@{rev[:12]} failed: {error}") from None
        return False
