"""Parallel sha256 of checkpoint files: the same digests as hashlib, errors as a plain read.

Why: ``fleet verify`` and every seed trust these digests; the reused read buffer and the
thread pool must never change a digest, lose bytes at a buffer boundary, or swallow a read error.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelfleet.volumes import hashing
from modelfleet.volumes.hashing import sha256_file, sha256_files

BLOCK = 1000  # a small read size, so files of a few KB cross several buffer boundaries


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "READ_SIZE", BLOCK)


@pytest.mark.parametrize(
    "size", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 2 * BLOCK + 1, 3 * BLOCK, 10 * BLOCK + 7]
)
def test_every_size_hashes_like_hashlib_across_block_boundaries(tmp_path: Path, size: int) -> None:
    data = bytes((i * 7 + size) % 251 for i in range(size))
    file = tmp_path / "shard.bin"
    file.write_bytes(data)

    assert sha256_file(file) == hashlib.sha256(data).hexdigest()


def test_many_files_in_parallel_each_get_their_own_digest(tmp_path: Path) -> None:
    contents = {tmp_path / f"model-{i:05d}.safetensors": bytes([i]) * (i * 531) for i in range(40)}
    for path, data in contents.items():
        path.write_bytes(data)

    digests = sha256_files(contents, threads=4)

    assert digests == {path: hashlib.sha256(data).hexdigest() for path, data in contents.items()}


def test_a_read_error_on_a_pool_thread_reaches_the_caller(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-file"
    folder.mkdir()

    with pytest.raises(IsADirectoryError):
        sha256_files([folder], threads=2)


def test_a_missing_file_raises_as_a_plain_read_would(tmp_path: Path) -> None:
    (tmp_path / "present").write_bytes(b"x" * 5000)
    with pytest.raises(FileNotFoundError):
        sha256_files([tmp_path / "present", tmp_path / "missing"], threads=2)


@pytest.mark.parametrize(("text", "cpus"), [("400000 100000\n", 4.0), ("150000 100000", 1.5), ("max 100000", None)])
def test_a_cgroup_cpu_quota_is_read_as_cpus(tmp_path: Path, text: str, cpus: float | None) -> None:
    quota = tmp_path / "cpu.max"
    quota.write_text(text)
    assert hashing._cgroup_cpu_quota(quota) == cpus


def test_threads_never_exceed_the_cap_or_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing.os, "sched_getaffinity", lambda _pid: set(range(64)))
    monkeypatch.setattr(hashing, "_cgroup_cpu_quota", lambda: 4.0)
    assert hashing.hashing_threads() == 4
    monkeypatch.setattr(hashing, "_cgroup_cpu_quota", lambda: None)
    assert hashing.hashing_threads() == hashing.MAX_THREADS
