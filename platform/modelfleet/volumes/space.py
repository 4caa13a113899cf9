"""Free disk space, checked before a download starts rather than discovered half-way through."""

from __future__ import annotations

import shutil
from pathlib import Path

from modelfleet.errors import FleetError

# Headroom for temporary files (a wheel next to its extracted file, .incomplete
# downloads) and for the filesystem's own needs.
MARGIN = 1.05


class DiskSpaceError(FleetError):
    """The volume cannot hold what is about to be written."""


def ensure_free_space(root: Path, needed_bytes: int, *, what: str) -> None:
    """Raise a clear error when ``root``'s filesystem has less free space than ``needed_bytes`` (plus margin)."""
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    wanted = int(needed_bytes * MARGIN)
    if wanted > free:
        raise DiskSpaceError(
            f"not enough disk space on {root} for {what}: it needs {_gb(wanted)}, {_gb(free)} free; "
            "free some space (`fleet volumes prune` removes revisions no model uses) or point FLEET_STATE_DIR elsewhere"
        )


def _gb(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:.2f} GB"
