"""Weights from a directory on this machine, copied onto the volume so both targets read
the same layout (and a Modal seeding job could upload the same tree)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from modelfleet.errors import FleetError


class LocalSourceError(FleetError):
    """The local directory is missing or does not look like a checkpoint."""


def seed_from_directory(source: Path, snapshot: Path, *, model_file: Path) -> None:
    """Copy ``source`` to ``snapshot`` through a temporary folder (never a half-copied checkpoint)."""
    if not (source / "config.json").is_file():
        raise LocalSourceError(
            f"{model_file}: weights.path: {source} has no config.json; point it at a checkpoint directory"
        )
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=snapshot.parent, prefix=".copying-") as scratch:
        staged = Path(scratch) / "checkpoint"
        shutil.copytree(source, staged, symlinks=False)
        if snapshot.exists():
            shutil.rmtree(snapshot)
        staged.rename(snapshot)
