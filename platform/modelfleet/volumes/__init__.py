"""Declared volumes and verified, resumable weight seeding, shared by both targets."""

from modelfleet.volumes.layout import checkpoint_dir, local_volume_root, location
from modelfleet.volumes.seeder import SeedResult, seed, verify_model

__all__ = ["SeedResult", "checkpoint_dir", "local_volume_root", "location", "seed", "verify_model"]
