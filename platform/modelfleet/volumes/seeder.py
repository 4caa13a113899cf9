"""``seed``: put one model's weights on a volume root, verified; idempotent and resumable.

No Modal import here: on Modal a function with the volume mounted read-write calls
this with the mount path, then commits the volume; locally the root is a folder
under ``.fleet/volumes/``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from modelfleet.catalog import CatalogModel
from modelfleet.spec.weights import HuggingFaceWeights, PypiWeights
from modelfleet.volumes.layout import WeightsLocation, local_source_path, location
from modelfleet.volumes.manifest import VerifyResult, build_entries, verify, write_manifest


@dataclass(frozen=True)
class SeedResult:
    """What a seed did: where the checkpoint is, and whether anything was fetched."""

    checkpoint_dir: Path
    skipped: bool
    bytes: int
    files: int
    seconds: float


def verify_model(model: CatalogModel, volume_root: Path) -> VerifyResult:
    """Whether the model's declared revision is on the volume, complete and undamaged."""
    where = location(model, volume_root)
    return verify(where.snapshot, where.manifest)


def seed(model: CatalogModel, volume_root: Path, *, progress: bool = False) -> SeedResult:
    """Seed ``model`` under ``volume_root``; a verified revision is left alone (nothing downloaded)."""
    started = time.monotonic()
    where = location(model, volume_root)
    existing = verify(where.snapshot, where.manifest)
    if existing.ok:
        return SeedResult(where.snapshot, True, existing.bytes, existing.files, time.monotonic() - started)
    # Whatever is there is incomplete or damaged: the manifest goes first, so an
    # interrupted re-seed can never look complete.
    where.manifest.unlink(missing_ok=True)
    _fetch(model, where, progress=progress)
    entries = build_entries(where.snapshot)
    write_manifest(where.manifest, entries, source=_describe(model))
    size = sum(e.size for e in entries)
    return SeedResult(where.snapshot, False, size, len(entries), time.monotonic() - started)


def _fetch(model: CatalogModel, where: WeightsLocation, *, progress: bool) -> None:
    weights = model.spec.weights
    if isinstance(weights, HuggingFaceWeights):
        from modelfleet.volumes.hf_source import download

        download(weights, where, model_file=model.file, progress=progress)
    elif isinstance(weights, PypiWeights):
        from modelfleet.volumes.pypi_source import seed_from_pypi

        seed_from_pypi(weights, where.snapshot, model_file=model.file)
    else:
        from modelfleet.volumes.local_source import seed_from_directory

        seed_from_directory(local_source_path(model), where.snapshot, model_file=model.file)


def _describe(model: CatalogModel) -> str:
    weights = model.spec.weights
    if isinstance(weights, HuggingFaceWeights):
        return f"huggingface:{weights.repo}@{weights.revision}"
    if isinstance(weights, PypiWeights):
        return f"pypi:{weights.package}=={weights.version}:{weights.file}#sha256={weights.sha256}"
    return f"local:{local_source_path(model)}"


def remove_revision(where: WeightsLocation) -> int:
    """Delete one revision (manifest first) and the blobs only it used; bytes freed."""
    where.manifest.unlink(missing_ok=True)
    freed = 0
    if where.snapshot.exists():
        for file in where.snapshot.rglob("*"):
            target = file.resolve()
            if file.is_symlink() and target.is_file():
                freed += target.stat().st_size
                target.unlink()
            elif file.is_file():
                freed += file.stat().st_size
        shutil.rmtree(where.snapshot)
    return freed
