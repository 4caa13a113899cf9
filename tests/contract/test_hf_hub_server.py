"""Contract tests: the real ``huggingface_hub`` client against :class:`LoopbackHub`.

Two things are pinned here. First, that the loopback hub is faithful enough for the real client
(if a ``huggingface_hub`` upgrade changes the requests it makes, these fail before the seeding
tests silently stop meaning anything). Second, what the client itself does on a cut connection or
on corrupted bytes -- the project's sha256 manifest exists because of the answer to the latter.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import types
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi, constants, file_download, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.support.hf_hub import LoopbackHub, git_blob_sha1

REPO = "acme/tiny-chat"
CONFIG = json.dumps({"num_hidden_layers": 2, "num_key_value_heads": 1, "head_dim": 8}).encode()
WEIGHTS = bytes(range(256)) * 64  # 16 KiB: small, but larger than the test chunk size below
FILES = {
    "config.json": CONFIG,
    "tokenizer_config.json": b'{"chat_template": "{{ messages }}"}',
    "model.safetensors": WEIGHTS,
    "original/consolidated.pth": b"not wanted by the allow patterns",
    "README.md": b"# tiny chat\n",
}
ALLOW = ["*.json", "*.safetensors"]


@pytest.fixture
def hub() -> Iterator[LoopbackHub]:
    """Serve a fresh hub per test: failure injections and request logs must not leak between tests."""
    with LoopbackHub(accepted_tokens={"hf_granted"}) as running:
        yield running


@pytest.fixture
def no_resume_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the client's 1 s sleeps before each resume attempt instead of sleeping, so tests stay fast."""
    sleeps: list[float] = []
    monkeypatch.setattr(file_download, "time", types.SimpleNamespace(sleep=sleeps.append))
    return sleeps


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_pinned_revision_lands_in_snapshot_folder(hub: LoopbackHub, tmp_path: Path) -> None:
    """A pinned commit downloads into ``snapshots/{sha}`` with only the allowed files, as symlinks into blobs.

    The seeding code relies on this layout to find the weights vLLM will read, and on
    ``allow_patterns`` to keep the unwanted ``.pth`` duplicates off the volume.
    """
    sha = hub.add_repo(REPO, FILES)
    assert re.fullmatch(r"[0-9a-f]{40}", sha)
    assert hub.add_repo(REPO, FILES) == sha, "same content must give the same commit"

    folder = snapshot_download(
        REPO, revision=sha, allow_patterns=ALLOW, cache_dir=tmp_path, endpoint=hub.endpoint, token=False
    )

    assert Path(folder) == tmp_path / "models--acme--tiny-chat" / "snapshots" / sha
    landed = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())
    assert landed == ["config.json", "model.safetensors", "tokenizer_config.json"]
    assert Path(folder, "model.safetensors").is_symlink()
    # LFS files are stored under their sha256, regular files under their git blob sha1 (the ETags).
    weights_blob = Path(os.path.realpath(Path(folder, "model.safetensors")))
    assert weights_blob.name == hashlib.sha256(WEIGHTS).hexdigest()
    assert Path(os.path.realpath(Path(folder, "config.json"))).name == git_blob_sha1(CONFIG)
    assert _sha256(Path(folder, "model.safetensors")) == hashlib.sha256(WEIGHTS).hexdigest()

    # Exactly one listing, then HEAD + GET per allowed file -- nothing for the filtered-out files.
    tree = [r for r in hub.requests if r.kind == "tree"]
    assert [r.query.get("recursive") for r in tree] == [["true"]]
    assert hub.downloads("model.safetensors") == 1
    assert hub.downloads("original/consolidated.pth") == 0
    assert hub.downloads("README.md") == 0


def test_second_download_of_a_pinned_revision_makes_no_requests(hub: LoopbackHub, tmp_path: Path) -> None:
    """A commit is immutable, so a warm cache must be served without touching the hub (cold-start cost)."""
    sha = hub.add_repo(REPO, FILES)
    first = snapshot_download(
        REPO, revision=sha, allow_patterns=ALLOW, cache_dir=tmp_path, endpoint=hub.endpoint, token=False
    )
    hub.clear_requests()

    second = snapshot_download(
        REPO, revision=sha, allow_patterns=ALLOW, cache_dir=tmp_path, endpoint=hub.endpoint, token=False
    )

    assert second == first
    assert hub.requests == []


def test_branch_moves_but_pinned_revision_does_not(hub: LoopbackHub, tmp_path: Path) -> None:
    """Why revisions are pinned: ``main`` follows the newest commit, the old sha keeps serving old bytes."""
    old = hub.add_repo(REPO, {"config.json": b'{"v": 1}'})
    new = hub.add_repo(REPO, {"config.json": b'{"v": 2}'})
    assert old != new

    main_path = hf_hub_download(REPO, "config.json", cache_dir=tmp_path, endpoint=hub.endpoint, token=False)
    pinned_path = hf_hub_download(
        REPO, "config.json", revision=old, cache_dir=tmp_path, endpoint=hub.endpoint, token=False
    )

    assert Path(main_path).read_bytes() == b'{"v": 2}'
    assert Path(pinned_path).read_bytes() == b'{"v": 1}'
    assert (tmp_path / "models--acme--tiny-chat" / "refs" / "main").read_text() == new


def test_unknown_revision_raises_revision_not_found(hub: LoopbackHub, tmp_path: Path) -> None:
    """A typo'd or force-pushed-away sha must fail loudly, not fall back to some cached snapshot."""
    hub.add_repo(REPO, FILES)
    missing = "0" * 40

    with pytest.raises(RevisionNotFoundError):
        snapshot_download(REPO, revision=missing, cache_dir=tmp_path, endpoint=hub.endpoint, token=False)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "config.json", revision=missing, cache_dir=tmp_path, endpoint=hub.endpoint, token=False)

    assert {r.error_code for r in hub.requests} == {"RevisionNotFound"}


def test_unknown_repo_and_missing_file_raise_typed_errors(hub: LoopbackHub, tmp_path: Path) -> None:
    """Repo-not-found and entry-not-found are distinct errors the seeding code reports differently."""
    sha = hub.add_repo(REPO, FILES)

    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("acme/nope", revision=sha, cache_dir=tmp_path, endpoint=hub.endpoint, token=False)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(REPO, "nope.json", revision=sha, cache_dir=tmp_path, endpoint=hub.endpoint, token=False)

    # The hub sends X-Repo-Commit with the 404, so the client caches the absence of the file.
    assert (tmp_path / "models--acme--tiny-chat" / ".no_exist" / sha / "nope.json").exists()


def test_gated_repo_needs_a_granted_token(hub: LoopbackHub, tmp_path: Path) -> None:
    """Gated repos (Llama) need the HF token secret; without it the error must say "gated", not "missing"."""
    sha = hub.add_repo(REPO, FILES, gated=True)

    def download(cache: str, token: str | bool) -> str:
        return snapshot_download(
            REPO, revision=sha, allow_patterns=ALLOW, cache_dir=tmp_path / cache, endpoint=hub.endpoint, token=token
        )

    with pytest.raises(GatedRepoError) as no_token:
        download("a", token=False)
    assert no_token.value.response.status_code == 401

    with pytest.raises(GatedRepoError) as wrong_token:
        download("b", token="hf_someone_else")
    assert wrong_token.value.response.status_code == 403

    folder = download("c", token="hf_granted")

    assert _sha256(Path(folder, "model.safetensors")) == hashlib.sha256(WEIGHTS).hexdigest()
    granted = [r for r in hub.requests if r.kind == "resolve" and r.status == 200]
    assert granted
    assert {r.headers["authorization"] for r in granted} == {"Bearer hf_granted"}


def test_truncated_body_is_refetched_transparently(
    hub: LoopbackHub, tmp_path: Path, no_resume_sleep: list[float]
) -> None:
    """Observed: a body cut below one client chunk (10 MiB) is re-downloaded whole, and the call succeeds.

    ``http_get`` counts resumable bytes per chunk it has written; a cut inside the first chunk
    leaves nothing written, so the retry is a plain GET without ``Range``. The caller sees no error.
    """
    sha = hub.add_repo(REPO, FILES)
    hub.truncate_next("model.safetensors", 1000)

    path = hf_hub_download(
        REPO, "model.safetensors", revision=sha, cache_dir=tmp_path, endpoint=hub.endpoint, token=False
    )

    assert _sha256(path) == hashlib.sha256(WEIGHTS).hexdigest()
    gets = [r for r in hub.requests if r.kind == "resolve" and r.method == "GET"]
    assert [(r.status, r.truncated, "range" in r.headers) for r in gets] == [(200, True, False), (200, False, False)]
    assert hub.downloads("model.safetensors") == 2
    assert no_resume_sleep == [1]


def test_truncated_body_resumes_with_range_request(
    hub: LoopbackHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_resume_sleep: list[float]
) -> None:
    """Observed: once whole chunks have been written, the retry asks ``Range: bytes=N-`` and gets a 206.

    The chunk size is shrunk to 1 KiB so a 16 KiB file behaves like a multi-GiB shard cut mid-way.
    """
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1024)
    sha = hub.add_repo(REPO, FILES)
    hub.truncate_next("model.safetensors", 5000)

    path = hf_hub_download(
        REPO, "model.safetensors", revision=sha, cache_dir=tmp_path, endpoint=hub.endpoint, token=False
    )

    assert _sha256(path) == hashlib.sha256(WEIGHTS).hexdigest()
    gets = [r for r in hub.requests if r.kind == "resolve" and r.method == "GET"]
    assert len(gets) == 2
    assert [(r.status, r.truncated) for r in gets] == [(200, True), (206, False)]
    resumed_from = int(gets[1].headers["range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_from <= 5000
    assert resumed_from % 1024 == 0


def test_persistent_truncation_gives_up_and_leaves_no_file(
    hub: LoopbackHub, tmp_path: Path, no_resume_sleep: list[float]
) -> None:
    """Observed: a hub that never completes the body makes the client give up after 5 resumes.

    The error is the transport's (``httpx2.RemoteProtocolError``), not a hub error, and no partial
    blob or snapshot entry is left behind -- so a retry of the seed starts clean.
    """
    sha = hub.add_repo(REPO, FILES)
    for _ in range(10):
        hub.truncate_next("model.safetensors", 0)

    with pytest.raises(httpx2.RemoteProtocolError):
        hf_hub_download(REPO, "model.safetensors", revision=sha, cache_dir=tmp_path, endpoint=hub.endpoint, token=False)

    assert hub.downloads("model.safetensors") == 6
    assert len(no_resume_sleep) == 5
    storage = tmp_path / "models--acme--tiny-chat"
    assert not (storage / "snapshots" / sha / "model.safetensors").exists()
    assert [p.name for p in (storage / "blobs").iterdir()] == []


def test_corrupted_bytes_are_not_detected_by_the_client(hub: LoopbackHub, tmp_path: Path) -> None:
    """Observed: same-size wrong bytes land in the cache silently, under the blob name of the *expected* sha256.

    ``hf_hub_download`` only checks the size. This is why the project keeps its own sha256 manifest;
    ``HfApi.verify_repo_checksums`` (opt-in, one more tree listing) does catch it.
    """
    sha = hub.add_repo(REPO, FILES)
    hub.corrupt("model.safetensors")
    expected = hub.file(REPO, sha, "model.safetensors").sha256

    folder = snapshot_download(
        REPO, revision=sha, allow_patterns=ALLOW, cache_dir=tmp_path, endpoint=hub.endpoint, token=False
    )

    weights = Path(folder, "model.safetensors")
    assert weights.stat().st_size == len(WEIGHTS)
    assert _sha256(weights) != expected
    assert Path(os.path.realpath(weights)).name == expected  # the cache "vouches" for bytes it never hashed

    report = HfApi(endpoint=hub.endpoint).verify_repo_checksums(REPO, revision=sha, cache_dir=tmp_path, token=False)
    assert [(m["path"], m["algorithm"], m["expected"]) for m in report.mismatches] == [
        ("model.safetensors", "sha256", expected)
    ]


def test_corrupted_size_is_detected_by_the_client(hub: LoopbackHub, tmp_path: Path) -> None:
    """Observed: bytes of another length fail the client's only check (size) with a consistency OSError."""
    sha = hub.add_repo(REPO, FILES)
    hub.corrupt("model.safetensors", replacement=WEIGHTS[:-1])

    with pytest.raises(OSError, match="Consistency check failed"):
        hf_hub_download(REPO, "model.safetensors", revision=sha, cache_dir=tmp_path, endpoint=hub.endpoint, token=False)

    assert not (tmp_path / "models--acme--tiny-chat" / "snapshots" / sha / "model.safetensors").exists()
