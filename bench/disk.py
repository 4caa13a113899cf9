"""Disk-side helpers for the verification benchmark: the disk's own read speed, cold reads, a checkpoint.

Why: verification is at "disk speed" only against a measured disk. ``read_speed`` reads the
very files verification hashes, sequentially in 16 MiB blocks without hashing -- the limit
hashing can reach. ``evict`` drops those files from the page cache
(``posix_fadvise(DONTNEED)`` after ``fsync``: only these files, not the whole machine's
cache), so "cold" means read from the device; the hypervisor below may still cache, which
the result file says.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from pathlib import Path

BLOCK = 16 * 2**20


def evict(paths: Iterable[Path]) -> None:
    """Drop the files' pages from this machine's page cache (written back first)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def read_speed(paths: list[Path], *, cold: bool) -> float:
    """GB/s of reading every file once, one after another, 16 MiB at a time, no hashing."""
    if cold:
        evict(paths)
    buffer = memoryview(bytearray(BLOCK))
    total = 0
    started = time.perf_counter()
    for path in paths:
        with path.open("rb", buffering=0) as handle:
            while count := handle.readinto(buffer):
                total += count
    return total / 1e9 / (time.perf_counter() - started)


def serial_sha256(paths: list[Path]) -> dict[Path, str]:
    """The verification this benchmark replaced, as a baseline in the same run: one thread,
    ``read(8 MiB)`` into fresh bytes (modelfleet/volumes/manifest.py before issue 21)."""
    digests = {}
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(8 * 2**20):
                digest.update(chunk)
        digests[path] = digest.hexdigest()
    return digests


def write_checkpoint(folder: Path, *, shards: int, shard_bytes: int) -> list[Path]:
    """``shards`` safetensors-named files of ``shard_bytes`` each, plus a small config, synced.

    Contents are random blocks (so no file system can dedupe or compress them), each shard
    starting with its own index so every digest differs.
    """
    folder.mkdir(parents=True, exist_ok=True)
    block = bytearray(os.urandom(BLOCK))
    paths = []
    for index in range(shards):
        path = folder / f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        block[:8] = index.to_bytes(8, "little")
        with path.open("wb") as handle:
            remaining = shard_bytes
            while remaining > 0:
                written = handle.write(memoryview(block)[: min(BLOCK, remaining)])
                remaining -= written
            handle.flush()
            os.fsync(handle.fileno())
        paths.append(path)
    config = folder / "config.json"
    config.write_text('{"architectures": ["LlamaForCausalLM"]}\n')
    return [config, *paths]


def sha256_capacity(threads: int, *, gigabytes: float = 1.0) -> float:
    """GB/s of sha256 over an in-memory buffer on ``threads`` threads: the CPU's ceiling, no I/O."""
    from concurrent.futures import ThreadPoolExecutor

    block = bytes(BLOCK)
    rounds = max(1, int(gigabytes * 1e9 / BLOCK / threads))

    def hash_rounds(_: int) -> None:
        digest = hashlib.sha256()
        for _ in range(rounds):
            digest.update(block)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(hash_rounds, range(threads)))
    return rounds * threads * BLOCK / 1e9 / (time.perf_counter() - started)
