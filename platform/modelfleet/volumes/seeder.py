"""``seed``: put one model's weights on a volume root, verified; idempotent and resumable.

No Modal import here: on Modal a function with the volume mounted read-write calls
:func:`seed` with the mount path and then commits the volume; locally the root is a
folder under ``.fleet/volumes/``. The rules that make it safe to interrupt:

* a revision counts as seeded only when its manifest exists and every file re-hashes
  to it, so a verified revision is left alone and nothing is downloaded;
* the manifest is removed before any write and written last, so a killed seed never
  looks complete; the next seed resumes (hub downloads) or rebuilds (PyPI, local);
* files that fail verification are removed first, so they are fetched again.
"""

from __future__ import annotations

import fcntl
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from modelfleet.catalog import CatalogModel
from modelfleet.spec.weights import HuggingFaceWeights, PypiWeights
from modelfleet.terminal import is_interactive
from modelfleet.volumes.layout import MANIFEST_DIR, WeightsLocation, local_source_path, location, remove_snapshot_file
from modelfleet.volumes.manifest import VerifyResult, build_entries, verify, write_manifest
from modelfleet.volumes.progress import SeedProgress


@dataclass(frozen=True)
class SeedResult:
    """What a seed did: where the checkpoint is, and whether anything was fetched."""

    checkpoint_dir: Path
    skipped: bool  # already seeded and verified: nothing was fetched
    bytes: int  # size of the checkpoint on the volume
    files: int  # files in the checkpoint
    downloaded_files: int  # files fetched (or built) by this call
    seconds: float


def verify_model(model: CatalogModel, volume_root: Path) -> VerifyResult:
    """Whether the model's declared revision is on the volume, complete and undamaged (re-hashes every file)."""
    where = location(model, volume_root)
    return verify(where.snapshot, where.manifest)


def seed(model: CatalogModel, volume_root: Path, *, progress: bool = False) -> SeedResult:
    """Seed ``model``'s declared weights under ``volume_root``; a verified revision is left alone.

    ``progress`` asks for byte bars; they are drawn only on a terminal outside CI.
    Raises a :class:`~modelfleet.errors.FleetError` naming model.toml's field on any
    user-fixable failure; the revision then stays unseeded (no manifest).
    """
    started = time.monotonic()
    where = location(model, volume_root)
    with _revision_lock(where):
        existing = verify(where.snapshot, where.manifest)
        if existing.ok:
            return SeedResult(where.snapshot, True, existing.bytes, existing.files, 0, time.monotonic() - started)
        where.manifest.unlink(missing_ok=True)
        for path in existing.bad:
            remove_snapshot_file(where.snapshot / path)
        with SeedProgress(enabled=progress and is_interactive(sys.stderr)) as bars:
            known, fetched = _fetch(model, where, bars)
        entries = build_entries(where.snapshot, known)
        write_manifest(where.manifest, entries, source=describe_source(model))
    size = sum(e.size for e in entries)
    return SeedResult(where.snapshot, False, size, len(entries), fetched, time.monotonic() - started)


def _fetch(model: CatalogModel, where: WeightsLocation, bars: SeedProgress) -> tuple[dict[str, str], int]:
    """Run the declared source; returns sha256s it already computed and how many files it fetched."""
    weights = model.spec.weights
    shown = _shown(model.file)
    if isinstance(weights, HuggingFaceWeights):
        from modelfleet.volumes.hf_source import download

        before = _present_files(where.snapshot)
        known = download(weights, where, model_file=shown, progress=bars)
        return known, len(set(known) - before)
    if isinstance(weights, PypiWeights):
        from modelfleet.volumes.pypi_source import seed_from_pypi

        seed_from_pypi(weights, where.snapshot, model_file=shown, progress=bars)
    else:
        from modelfleet.volumes.local_source import seed_from_directory

        seed_from_directory(local_source_path(model), where.snapshot, model_file=shown, progress=bars)
    return {}, len(_present_files(where.snapshot))


def _shown(model_file: Path) -> Path:
    """model.toml as the user would type it: relative to the working directory when inside it."""
    try:
        return model_file.relative_to(Path.cwd())
    except ValueError:
        return model_file


def _present_files(snapshot: Path) -> set[str]:
    if not snapshot.is_dir():
        return set()
    return {p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()}


def describe_source(model: CatalogModel) -> str:
    """Where a model's weights come from, as recorded in its manifest (no secrets: there are none in a spec)."""
    weights = model.spec.weights
    if isinstance(weights, HuggingFaceWeights):
        return f"huggingface:{weights.repo}@{weights.revision}"
    if isinstance(weights, PypiWeights):
        return f"pypi:{weights.package}=={weights.version}:{weights.file}#sha256={weights.sha256}"
    return f"local:{local_source_path(model)}"


@contextmanager
def _revision_lock(where: WeightsLocation) -> Iterator[None]:
    """One seed per revision at a time on this machine (two test sessions, two CLI calls).

    Modal's volume mounts may not support ``flock``; there each seed is its own
    container and the manifest-last rule alone keeps a half-written revision unseeded.
    """
    lock_dir = where.root / MANIFEST_DIR / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / f"{where.manifest.stem}.lock").open("w") as handle:
        with suppress(OSError):  # no locking on this filesystem: see above
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
