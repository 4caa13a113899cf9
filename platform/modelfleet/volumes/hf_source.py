"""Weights from the Hugging Face hub at a pinned commit, through the real huggingface_hub.

``snapshot_download`` resumes interrupted files (``.incomplete`` blobs and Range
requests) and lays them out in the hub cache layout the serving containers read
(``HF_HUB_CACHE`` pointing at the volume). hf_xet, when installed, is picked up by the
client itself for Xet-backed repos. The client checks sizes only, so every file is then
checked against the hash the hub publishes for it (sha256 for LFS files, the git blob
sha1 for the rest): a mismatch is removed and fetched once more, then refused.

``HF_TOKEN`` comes from the environment (on Modal: the secret named by
``weights.token_secret``) and is passed to the client only; it is never logged.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Literal

from modelfleet.errors import FleetError
from modelfleet.spec.weights import HuggingFaceWeights
from modelfleet.volumes.hashing import READ_SIZE
from modelfleet.volumes.layout import WeightsLocation, remove_snapshot_file
from modelfleet.volumes.progress import SeedProgress
from modelfleet.volumes.space import ensure_free_space


class HubSourceError(FleetError):
    """The hub refused or could not deliver the pinned revision."""


@dataclass(frozen=True)
class RemoteFile:
    """A file of the pinned revision as the hub lists it: size and the hash it publishes."""

    path: str
    size: int
    hash_kind: Literal["sha256", "git-sha1"]
    digest: str


def _hub_token() -> str | bool:
    # False (not None) stops huggingface_hub from falling back to a stored login:
    # what a seed may read is decided by the environment alone.
    return os.environ.get("HF_TOKEN") or False


def _endpoint() -> str | None:
    # huggingface_hub reads HF_ENDPOINT once, at import; passing it on every call honours
    # a later change (a mirror, a test's loopback hub).
    return os.environ.get("HF_ENDPOINT") or None


def list_wanted_files(weights: HuggingFaceWeights, *, model_file: Path) -> list[RemoteFile]:
    """The files of the pinned revision that the allow/ignore patterns select, with their published hashes."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    api = HfApi(endpoint=_endpoint(), token=_hub_token())
    with _hub_errors(weights, model_file):
        tree = list(api.list_repo_tree(weights.repo, revision=weights.revision, recursive=True, expand=False))
    files = []
    for item in tree:
        if not isinstance(item, RepoFile) or not _wanted(item.path, weights):
            continue
        if item.lfs is not None:
            files.append(RemoteFile(item.path, item.size, "sha256", item.lfs.sha256))
        else:
            files.append(RemoteFile(item.path, item.size, "git-sha1", item.blob_id))
    if not files:
        raise HubSourceError(
            f"{model_file}: weights.allow_patterns: no file of {weights.repo}@{weights.revision[:12]} matches "
            f"{weights.allow_patterns} (minus ignore_patterns {weights.ignore_patterns}); widen the patterns"
        )
    return files


def download(
    weights: HuggingFaceWeights, where: WeightsLocation, *, model_file: Path, progress: SeedProgress
) -> dict[str, str]:
    """Download (or resume) the pinned revision into the volume's hub cache; returns path -> verified sha256."""
    from huggingface_hub import snapshot_download

    wanted = list_wanted_files(weights, model_file=model_file)
    missing = sum(f.size for f in wanted if not _same_size(where.snapshot / f.path, f.size))
    ensure_free_space(where.root, missing, what=f"{weights.repo}@{weights.revision[:12]}")
    for attempt in (1, 2):
        with _hub_errors(weights, model_file):
            snapshot_download(
                weights.repo,
                revision=weights.revision,
                cache_dir=str(where.root),
                allow_patterns=weights.allow_patterns,
                ignore_patterns=weights.ignore_patterns or None,
                token=_hub_token(),
                endpoint=_endpoint(),
                tqdm_class=progress.tqdm_class(weights.repo),
            )
        checked = {f.path: _verified_sha256(where.snapshot / f.path, f) for f in wanted}
        bad = sorted(path for path, digest in checked.items() if digest is None)
        if not bad:
            return {path: digest for path, digest in checked.items() if digest is not None}
        for path in bad:
            remove_snapshot_file(where.snapshot / path)
        if attempt == 1:
            progress.note(f"{len(bad)} file(s) did not match the hub's hash; fetching them again: {', '.join(bad)}")
    raise HubSourceError(
        f"{model_file}: weights: {', '.join(bad)} of {weights.repo}@{weights.revision[:12]} did not match the hash "
        "the hub publishes, twice; the files were removed and nothing is marked seeded (check HF_ENDPOINT / proxy)"
    )


def _same_size(file: Path, size: int) -> bool:
    return file.is_file() and file.stat().st_size == size


def _verified_sha256(file: Path, remote: RemoteFile) -> str | None:
    """The file's sha256 when it matches what the hub publishes, else None (one read for both hashes)."""
    if not _same_size(file, remote.size):
        return None
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(f"blob {remote.size}\0".encode(), usedforsecurity=False)
    with file.open("rb") as handle:
        while chunk := handle.read(READ_SIZE):
            sha256.update(chunk)
            if remote.hash_kind == "git-sha1":
                blob.update(chunk)
    actual = sha256.hexdigest() if remote.hash_kind == "sha256" else blob.hexdigest()
    return sha256.hexdigest() if actual == remote.digest else None


def _wanted(path: str, weights: HuggingFaceWeights) -> bool:
    allowed = any(fnmatch(path, p) for p in weights.allow_patterns)
    return allowed and not any(fnmatch(path, p) for p in weights.ignore_patterns)


@contextmanager
def _hub_errors(weights: HuggingFaceWeights, model_file: Path) -> Iterator[None]:
    """Turn huggingface_hub's typed errors into one line naming the file, the field and the fix."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo, revision = weights.repo, weights.revision
    pinned = f"{repo}@{revision[:12]}"
    try:
        yield
    except GatedRepoError:
        if os.environ.get("HF_TOKEN"):
            fix = (
                "the HF_TOKEN in the environment has no access: accept the model's license on the hub with that account"
            )
        else:
            secret = f" (here: {weights.token_secret!r})" if weights.token_secret else ""
            fix = (
                "set HF_TOKEN in the environment (local target) or weights.token_secret to a Modal secret holding "
                f"HF_TOKEN{secret}"
            )
        raise HubSourceError(f"{model_file}: weights.repo: {repo} is gated; {fix}") from None
    except RevisionNotFoundError:
        raise HubSourceError(
            f"{model_file}: weights.revision: {revision} is not a commit of {repo}; copy a full commit hash from "
            f"https://huggingface.co/{repo}/commits/main"
        ) from None
    except RepositoryNotFoundError:
        raise HubSourceError(
            f"{model_file}: weights.repo: {repo} does not exist, or is private and needs HF_TOKEN "
            "(weights.token_secret on Modal)"
        ) from None
    except RemoteEntryNotFoundError as error:
        raise HubSourceError(
            f"{model_file}: weights: a listed file of {pinned} is missing on the hub: {error}"
        ) from None
    except LocalEntryNotFoundError:
        raise HubSourceError(
            f"{model_file}: weights: cannot reach the hub ({_endpoint() or 'huggingface.co'}) to download {pinned}; "
            "check the network or HF_ENDPOINT"
        ) from None
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        raise HubSourceError(f"{model_file}: weights: the hub answered HTTP {status} for {pinned}") from None
    except (httpx2.ConnectError, httpx2.ConnectTimeout):
        raise HubSourceError(
            f"{model_file}: weights: cannot reach the hub ({_endpoint() or 'huggingface.co'}) to fetch {pinned}; "
            "check the network or HF_ENDPOINT (on a machine without hub access, seed on Modal)"
        ) from None
    except httpx2.HTTPError as error:
        raise HubSourceError(
            f"{model_file}: weights: the connection to the hub ({_endpoint() or 'huggingface.co'}) failed while "
            f"fetching {pinned} ({type(error).__name__}); nothing is marked seeded: run the seed again to finish it, "
            "or check the network / HF_ENDPOINT"
        ) from None
