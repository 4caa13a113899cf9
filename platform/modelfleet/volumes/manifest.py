"""A sha256 manifest per seeded revision: a model counts as seeded only when it verifies.

The manifest is written last and atomically (temp file + rename), so an interrupted
seed never looks complete; :func:`verify` re-hashes every file, so a corrupted or
truncated file is found; :func:`check_sizes` is the cheap look ``fleet volumes`` uses.
Hashing runs files in parallel with large reads (``hashing.py``). Each entry also lists
the sha256 of every ``BLOCK_SIZE`` piece of its file (``blocks``, with the manifest's
``block_size``), so verification re-hashes pieces on every core, one big shard included;
an entry without them (a manifest written before they existed) is re-hashed whole.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from modelfleet.files import write_atomic
from modelfleet.volumes.hashing import BLOCK_SIZE, bad_blocks, block_sha256s, sha256_files

FORMAT = 1


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a checkpoint."""

    path: str
    size: int
    sha256: str
    blocks: tuple[str, ...] = ()  # sha256 of each BLOCK_SIZE piece; empty in older manifests


@dataclass(frozen=True)
class Manifest:
    """What was seeded, from where and when."""

    source: str
    written_at: str
    entries: tuple[ManifestEntry, ...]
    block_size: int = 0  # bytes per entry block; 0 when the manifest has no blocks

    @property
    def total_bytes(self) -> int:
        """Size of the checkpoint."""
        return sum(e.size for e in self.entries)


@dataclass
class VerifyResult:
    """What a check found: nothing wrong, or which files are missing or damaged."""

    ok: bool
    files: int = 0
    bytes: int = 0
    bad: list[str] = field(default_factory=list)
    reason: str = ""


def build_entries(snapshot: Path, known: Mapping[str, str] | None = None) -> list[ManifestEntry]:
    """One entry per file under a checkpoint (symlinks followed into ``blobs/``).

    ``known`` holds sha256s a source already computed while checking the download,
    so multi-GB shards are not read twice.
    """
    known = known or {}
    files = sorted(p for p in snapshot.rglob("*") if p.is_file())
    relative = {file: file.relative_to(snapshot).as_posix() for file in files}
    computed = sha256_files(file for file in files if relative[file] not in known)
    blocks = block_sha256s(files)
    return [
        ManifestEntry(
            relative[file], file.stat().st_size, known.get(relative[file]) or computed[file], tuple(blocks[file])
        )
        for file in files
    ]


def write_manifest(manifest: Path, entries: list[ManifestEntry], *, source: str) -> None:
    """Write the manifest atomically: a reader sees no manifest or the complete new one."""
    data = {
        "format": FORMAT,
        "source": source,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "block_size": BLOCK_SIZE,
        "files": [{"path": e.path, "size": e.size, "sha256": e.sha256, "blocks": list(e.blocks)} for e in entries],
    }
    write_atomic(manifest, json.dumps(data, indent=2))


def read_manifest(manifest: Path) -> Manifest | None:
    """The manifest, or None when there is none or it cannot be read (then the revision is not seeded)."""
    try:
        data = json.loads(manifest.read_text())
        block_size = int(data.get("block_size", 0))
        entries = tuple(
            ManifestEntry(str(f["path"]), int(f["size"]), str(f["sha256"]), tuple(str(b) for b in f.get("blocks", [])))
            for f in data["files"]
        )
        return Manifest(str(data.get("source", "")), str(data.get("written_at", "")), entries, block_size)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def verify(snapshot: Path, manifest: Path) -> VerifyResult:
    """Re-hash every file the manifest lists (sizes first: a truncated file costs no read)."""
    return _check(snapshot, manifest, rehash=True)


def check_sizes(snapshot: Path, manifest: Path) -> VerifyResult:
    """The cheap check: the manifest exists and every file has its size (no hashing)."""
    return _check(snapshot, manifest, rehash=False)


def _check(snapshot: Path, manifest: Path, *, rehash: bool) -> VerifyResult:
    found = read_manifest(manifest)
    if found is None:
        return VerifyResult(False, reason="no manifest: never seeded, or the seed was interrupted")
    sized = [e for e in found.entries if _has_size(snapshot / e.path, e.size)]
    damaged = _damaged(snapshot, found, sized) if rehash else set()
    bad = [e.path for e in found.entries if e not in sized or e.path in damaged]  # in manifest order
    reason = f"{len(bad)} file(s) missing or damaged: {', '.join(bad[:5])}" if bad else ""
    return VerifyResult(not bad, len(found.entries), found.total_bytes, bad, reason)


def _damaged(snapshot: Path, manifest: Manifest, entries: list[ManifestEntry]) -> set[str]:
    """Paths whose content no longer matches: by block where the manifest has blocks of this
    build's size and a complete list, else by whole-file sha256."""
    by_block = {
        e: snapshot / e.path
        for e in entries
        if manifest.block_size == BLOCK_SIZE and len(e.blocks) == -(-e.size // BLOCK_SIZE)
    }
    whole = [e for e in entries if e not in by_block]
    failed = bad_blocks({path: e.blocks for e, path in by_block.items()})
    digests = sha256_files(snapshot / e.path for e in whole)
    return {e.path for e, path in by_block.items() if path in failed} | {
        e.path for e in whole if digests[snapshot / e.path] != e.sha256
    }


def _has_size(file: Path, size: int) -> bool:
    """The file exists with the manifest's size (a missing or truncated file costs no read)."""
    return file.is_file() and file.stat().st_size == size
