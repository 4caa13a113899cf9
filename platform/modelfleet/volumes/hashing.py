"""sha256 of checkpoint files at disk speed: files and blocks in parallel, read in large pieces.

Why: ``fleet verify`` (and every seed, which verifies first) re-hashes every byte of a
checkpoint, and one thread reading 8 MiB at a time into fresh ``bytes`` reached 0.60 GB/s
(bench/seeding.py) -- well below the disk. What makes it faster:

- **Files in parallel.** ``hashlib`` releases the GIL while it hashes a buffer larger than
  2047 bytes (CPython Modules/sha2module.c, ``HASHLIB_GIL_MINSIZE``), and ``readinto``
  releases it while the kernel copies, so threads hash on every core. Largest files go
  first so the last one to finish is a small one.
- **Reads into one reused buffer.** ``readinto`` a buffer allocated once per file (or
  block) instead of a fresh ``bytes`` per read. Its size was measured, not assumed: on this
  machine 1 MiB beat 16 and 32 MiB by 1.5-3x (a buffer that fits the CPU's cache is copied
  into by the kernel and read by sha256 without a trip to memory; larger ones also cost a
  page fault per 4 KiB the first time), while the kernel's read-ahead keeps the disk streaming. (A read-ahead thread per file, overlapping the
  kernel's copy with hashing, was tried and measured no faster on this machine, so it is
  not here; memory mapping would skip the copy, but a file truncated while mapped kills the
  process with SIGBUS, where a short read is only a wrong hash.)
- **Block digests.** One core's sha256 runs at ~0.8-1.5 GB/s on this machine, below the disk,
  and the demo model is one 269 MB shard. So a seed also records the sha256 of every
  ``BLOCK_SIZE`` piece of each file (``block_sha256s``), and verification re-hashes those
  pieces on every core at once (``bad_blocks``): every byte is still compared with a digest
  taken when the file was seeded, and a checkpoint of one big file verifies on all cores.
  The whole-file sha256 (the hub's own value) stays in the manifest and is what the seed
  checks a download against.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Measured on the 2-core machine (warm demo shard, sha256 + copy): 1 MiB 0.52-0.57 GB/s on one
# thread vs 16 MiB 0.12-0.53; two threads over 32 MiB blocks 0.73-0.80 with 1 MiB reads vs
# 0.21-0.22 with one 32 MiB read.
READ_SIZE = 1 * 2**20
# Past a handful of threads the disk is the limit, and each thread holds a block buffer.
MAX_THREADS = 8
# The unit of parallel verification within a file: small enough that a 269 MB shard spreads
# over two cores (9 blocks), large enough that a 140 GB checkpoint's manifest stays small
# (~4,200 digests).
BLOCK_SIZE = 32 * 2**20


def hashing_threads() -> int:
    """Threads to hash with: the cores this process may use, at most ``MAX_THREADS``.

    A container limited by a CPU quota (Modal's ``cpu=``, a cgroup's ``cpu.max``) still sees
    every core of its host in its affinity mask; the quota is what it may use.
    """
    cores = len(os.sched_getaffinity(0))
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, min(cores, MAX_THREADS))


def _cgroup_cpu_quota(path: Path = Path("/sys/fs/cgroup/cpu.max")) -> float | None:
    """CPUs allowed by the cgroup v2 quota (``"400000 100000"`` -> 4.0); None when unlimited or unknown."""
    try:
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def sha256_file(path: Path) -> str:
    """Hex sha256 of one file, read in ``READ_SIZE`` blocks into one reused buffer."""
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(min(READ_SIZE, max(path.stat().st_size, 1))))
    with path.open("rb", buffering=0) as handle:
        _advise_sequential(handle.fileno())
        while count := handle.readinto(buffer):
            digest.update(buffer[:count])
    return digest.hexdigest()


def sha256_files(paths: Iterable[Path], *, threads: int | None = None) -> dict[Path, str]:
    """Hex sha256 of every file, ``threads`` files at a time (default: one per core).

    A file that cannot be read raises its ``OSError``, as reading it alone would.
    """
    ordered = sorted(set(paths), key=_size_or_zero, reverse=True)
    workers = min(threads or hashing_threads(), len(ordered)) or 1
    if workers == 1:
        return {path: sha256_file(path) for path in ordered}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sha256") as pool:
        return dict(zip(ordered, pool.map(sha256_file, ordered), strict=True))


def block_sha256s(paths: Iterable[Path], *, threads: int | None = None) -> dict[Path, list[str]]:
    """The sha256 of every ``BLOCK_SIZE`` piece of each file (the last may be shorter; none if empty)."""
    files = sorted(set(paths))
    pieces = [(path, offset) for path in files for offset in range(0, path.stat().st_size, BLOCK_SIZE)]
    digests = _hash_pieces(pieces, threads)
    return {path: [digests[(p, o)] for p, o in pieces if p == path] for path in files}


def bad_blocks(expected: Mapping[Path, Sequence[str]], *, threads: int | None = None) -> set[Path]:
    """Files one of whose pieces no longer hashes to the digest recorded for it.

    The caller has checked each file's size, so every piece is expected whole; a file that
    shrank or vanished meanwhile reads short (or fails) and counts as bad.
    """
    pieces = [(path, index * BLOCK_SIZE) for path, blocks in expected.items() for index in range(len(blocks))]
    try:
        found = _hash_pieces(pieces, threads)
    except OSError:
        # A file vanished or broke mid-way: tell which, one file at a time.
        return {path for path in expected if _file_fails(path, expected[path], threads)}
    return {path for path, offset in pieces if found[(path, offset)] != expected[path][offset // BLOCK_SIZE]}


def _file_fails(path: Path, blocks: Sequence[str], threads: int | None) -> bool:
    pieces = [(path, index * BLOCK_SIZE) for index in range(len(blocks))]
    try:
        found = _hash_pieces(pieces, threads)
    except OSError:
        return True
    return any(found[(path, offset)] != blocks[offset // BLOCK_SIZE] for _, offset in pieces)


def _hash_pieces(pieces: list[tuple[Path, int]], threads: int | None) -> dict[tuple[Path, int], str]:
    """sha256 of each (file, offset) piece of up to ``BLOCK_SIZE`` bytes, on every core."""

    def piece(item: tuple[Path, int]) -> str:
        path, offset = item
        buffer = memoryview(bytearray(READ_SIZE))
        digest = hashlib.sha256()
        fd = os.open(path, os.O_RDONLY)
        try:
            position, end = offset, offset + BLOCK_SIZE
            while position < end:
                count = os.preadv(fd, [buffer[: min(READ_SIZE, end - position)]], position)
                if not count:
                    break  # end of file: a last block shorter than BLOCK_SIZE (or a file that shrank)
                digest.update(buffer[:count])
                position += count
        finally:
            os.close(fd)
        return digest.hexdigest()

    workers = min(threads or hashing_threads(), len(pieces)) or 1
    if workers == 1:
        return {item: piece(item) for item in pieces}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sha256-block") as pool:
        return dict(zip(pieces, pool.map(piece, pieces), strict=True))


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # hashed last; the read then raises the real error


def _advise_sequential(fd: int) -> None:
    """Ask for aggressive read-ahead (a hint: ignored where unsupported)."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        with contextlib.suppress(OSError):
            advise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
