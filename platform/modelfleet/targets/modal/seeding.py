"""The seed function's body: seed the volume with the shared seeder, commit it, report one line.

Apart from ``app`` so the serving app's modules never import the seeder's heavy
dependencies through it; only ``seed_entry`` uses this.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from modelfleet.targets.modal.app import SEED_MARKER
from modelfleet.targets.modal.bundle import ModelBundle


class Committable(Protocol):
    """A mounted Modal volume: ``commit()`` publishes what this container wrote."""

    def commit(self) -> None:
        """Publish this container's writes to the volume."""


def run_seed(bundle: ModelBundle, volume: Committable) -> dict[str, object]:
    """Inside the seed function: seed the volume (idempotent, verified), then commit it."""
    from modelfleet.volumes import seed

    result = seed(bundle.catalog_model(), Path(bundle.weights.mount_path))
    if not result.skipped:
        # Readers see new files only after a commit.
        volume.commit()
    summary: dict[str, object] = {
        "checkpoint": str(result.checkpoint_dir),
        "skipped": result.skipped,
        "bytes": result.bytes,
        "files": result.files,
        "seconds": round(result.seconds, 1),
    }
    print(SEED_MARKER + json.dumps(summary), flush=True)
    return summary
