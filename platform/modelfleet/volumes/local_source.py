"""Weights from a directory on this machine, copied onto the volume so both targets read
the same layout and the volume stays self-contained (the source may move or change)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from modelfleet.errors import FleetError
from modelfleet.volumes.progress import SeedProgress
from modelfleet.volumes.space import ensure_free_space

COPY_PREFIX = ".copying-"


class LocalSourceError(FleetError):
    """The local directory is missing or does not look like a checkpoint."""


def seed_from_directory(source: Path, snapshot: Path, *, model_file: Path, progress: SeedProgress) -> None:
    """Copy ``source`` to ``snapshot`` through a temporary folder, renamed into place last."""
    if not (source / "config.json").is_file():
        raise LocalSourceError(
            f"{model_file}: weights.path: {source} has no config.json; point it at a checkpoint directory"
        )
    files = sorted(p for p in source.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{COPY_PREFIX}{snapshot.name}-"
    for leftover in snapshot.parent.glob(f"{prefix}*"):
        shutil.rmtree(leftover, ignore_errors=True)  # a killed copy of this revision
    ensure_free_space(snapshot.parent, total, what=str(source))
    bar = progress.add(f"copying {source.name}", total)
    with tempfile.TemporaryDirectory(dir=snapshot.parent, prefix=prefix) as scratch:
        staged = Path(scratch) / "checkpoint"
        for file in files:
            target = staged / file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)  # follows symlinks: the volume must not point outside itself
            progress.advance(bar, file.stat().st_size)
        if snapshot.exists():
            shutil.rmtree(snapshot)
        staged.rename(snapshot)
