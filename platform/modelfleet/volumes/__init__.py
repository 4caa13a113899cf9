"""Declared volumes and verified, resumable weight seeding, shared by both targets.

Nothing here imports Modal: the Modal target runs :func:`seed` inside a function that
has the volume mounted, the local target runs it on ``.fleet/volumes/<name>``.
"""

from modelfleet.volumes.inventory import SeededRevision, prune, scan
from modelfleet.volumes.layout import WeightsLocation, checkpoint_dir, local_volume_root, location
from modelfleet.volumes.manifest import VerifyResult
from modelfleet.volumes.seeder import SeedResult, seed, verify_model

__all__ = [
    "SeedResult",
    "SeededRevision",
    "VerifyResult",
    "WeightsLocation",
    "checkpoint_dir",
    "local_volume_root",
    "location",
    "prune",
    "scan",
    "seed",
    "verify_model",
]
