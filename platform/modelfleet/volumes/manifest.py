"""A sha256 manifest per seeded revision: a model counts as seeded only when it verifies.

The manifest is written last and atomically, so an interrupted seed never looks
complete; ``verify`` re-hashes every file, so a corrupted or truncated file is found.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

CHUNK = 8 * 2**20


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a checkpoint."""

    path: str
    size: int
    sha256: str


@dataclass
class VerifyResult:
    """What ``verify`` found: nothing wrong, or which files are missing or damaged."""

    ok: bool
    files: int = 0
    bytes: int = 0
    bad: list[str] = field(default_factory=list)
    reason: str = ""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (checkpoints are many GB)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def build_entries(snapshot: Path) -> list[ManifestEntry]:
    """Hash every file under a checkpoint directory (symlinks followed into blobs/)."""
    entries = []
    for file in sorted(p for p in snapshot.rglob("*") if p.is_file()):
        entries.append(ManifestEntry(str(file.relative_to(snapshot)), file.stat().st_size, sha256_file(file)))
    return entries


def write_manifest(manifest: Path, entries: list[ManifestEntry], *, source: str) -> None:
    """Write the manifest atomically: a reader sees the old state or the complete new one."""
    manifest.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "source": source,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in entries],
    }
    temp = manifest.with_name(f".{manifest.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(data, indent=2))
    temp.replace(manifest)


def read_manifest(manifest: Path) -> list[ManifestEntry] | None:
    """The entries, or None when there is no (readable) manifest."""
    try:
        data = json.loads(manifest.read_text())
        return [ManifestEntry(f["path"], int(f["size"]), f["sha256"]) for f in data["files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def verify(snapshot: Path, manifest: Path) -> VerifyResult:
    """Re-hash every file the manifest lists; sizes first (cheap), then contents."""
    entries = read_manifest(manifest)
    if entries is None:
        return VerifyResult(False, reason="no manifest: not seeded, or the seed was interrupted")
    bad = []
    total = 0
    for entry in entries:
        file = snapshot / entry.path
        if not file.is_file() or file.stat().st_size != entry.size or sha256_file(file) != entry.sha256:
            bad.append(entry.path)
        total += entry.size
    reason = f"{len(bad)} file(s) missing or damaged: {', '.join(bad[:5])}" if bad else ""
    return VerifyResult(not bad, len(entries), total, bad, reason)
