"""What is on a weights volume, which model uses it, and removing what no model uses.

A revision is *stale* when no model of the catalog declares it any more (a model was
removed or moved to a new commit). Stale revisions only cost disk (and money on
Modal); ``fleet volumes prune`` removes them, manifest first so a half-pruned
revision never looks seeded.

:class:`WeightsVolume` is what a target hands the CLI (``Target.weights_volume``): a
weights volume this machine can read, with the verbs ``fleet volumes``, ``fleet verify``
and ``fleet volumes prune`` need, so the CLI never asks which target it talks to.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from modelfleet.catalog import CatalogModel
from modelfleet.errors import FleetError
from modelfleet.volumes.layout import WeightsLocation, location, repo_id_of
from modelfleet.volumes.manifest import VerifyResult, check_sizes
from modelfleet.volumes.seeder import verify_model

RevisionState = Literal["seeded", "incomplete", "damaged"]


@dataclass(frozen=True)
class SeededRevision:
    """One revision found on a volume."""

    where: WeightsLocation
    state: RevisionState  # seeded: manifest present and sizes match (``fleet verify`` re-hashes)
    bytes: int
    models: tuple[str, ...]  # models of the catalog that declare this revision

    @property
    def stale(self) -> bool:
        """No model references this revision."""
        return not self.models


@dataclass(frozen=True)
class WeightsVolume:
    """A weights volume readable from this machine: its name and the folder holding its files."""

    name: str
    root: Path

    def revisions(self, models: Iterable[CatalogModel]) -> list[SeededRevision]:
        """Every revision on the volume, with the models that declare it (see :func:`scan`)."""
        return scan(self.root, models)

    def unseeded(self, models: Iterable[CatalogModel]) -> list[str]:
        """Names of the models whose declared revision is not on the volume at all."""
        return sorted(m.name for m in models if not location(m, self.root).snapshot.is_dir())

    def checkpoint(self, model: CatalogModel) -> Path:
        """The model's checkpoint folder once seeded (see :func:`seeded_checkpoint`)."""
        return seeded_checkpoint(model, self.root)

    def verify(self, model: CatalogModel) -> VerifyResult:
        """Re-hash every file of the model's seeded revision; :class:`NotSeededError` when one is missing or damaged."""
        result = verify_model(model, self.root)
        if not result.ok:
            raise NotSeededError(not_seeded_message(model, location(model, self.root), result.reason))
        return result

    def prune(self, revisions: Iterable[SeededRevision]) -> int:
        """Remove the given revisions (the stale ones); returns the bytes freed."""
        return prune(revisions)


class VolumeNotHereError(FleetError):
    """The target's weights volume is not readable from this machine (a Modal Volume); the message says how to list it."""


class NotSeededError(FleetError):
    """A model's declared revision is not (completely) on its weights volume."""


def seeded_checkpoint(model: CatalogModel, volume_root: Path) -> Path:
    """The checkpoint folder vLLM loads for ``model``; :class:`NotSeededError` unless its manifest says complete.

    The one check of "is this model seeded" before anything uses its weights: the manifest
    exists (written last by a seed) and every file has its size. Re-hashing is ``fleet
    verify``'s job (:meth:`WeightsVolume.verify`), too slow for every start.
    """
    where = location(model, volume_root)
    found = check_sizes(where.snapshot, where.manifest)
    if not found.ok:
        raise NotSeededError(not_seeded_message(model, where, found.reason))
    return where.snapshot


def not_seeded_message(model: CatalogModel, where: WeightsLocation, reason: str) -> str:
    """The one wording of a missing or damaged revision: which model, which revision, on which volume, the fix."""
    return (
        f"{model.name}: {where.repo_id}@{where.revision[:16]} is not seeded on {where.root.name}: {reason}; "
        f"run `fleet seed {model.name}`"
    )


def scan(volume_root: Path, models: Iterable[CatalogModel]) -> list[SeededRevision]:
    """Every revision on the volume, seeded or not, with the models that declare it.

    Declared revisions with nothing on the volume yet are not listed: they are not there.
    """
    users: dict[tuple[str, str], list[str]] = {}
    for model in models:
        where = location(model, volume_root)
        users.setdefault((where.repo_id, where.revision), []).append(model.name)
    found = []
    for snapshot in sorted(volume_root.glob("models--*/snapshots/*")):
        if not snapshot.is_dir() or snapshot.name.startswith("."):
            continue  # scratch folders of a seed in progress
        where = WeightsLocation(volume_root, repo_id_of(snapshot.parent.parent), snapshot.name)
        found.append(
            SeededRevision(where, _state(where), _size(snapshot), tuple(users.get((where.repo_id, where.revision), [])))
        )
    return found


def _state(where: WeightsLocation) -> RevisionState:
    if not where.manifest.is_file():
        return "incomplete"
    return "seeded" if check_sizes(where.snapshot, where.manifest).ok else "damaged"


def _size(snapshot: Path) -> int:
    return sum(p.stat().st_size for p in snapshot.rglob("*") if p.is_file())


def prune(revisions: Iterable[SeededRevision]) -> int:
    """Remove the given revisions (callers pass the stale ones); returns the bytes freed."""
    return sum(remove_revision(r.where) for r in revisions)


def remove_revision(where: WeightsLocation) -> int:
    """Delete one revision: manifest first, then its snapshot and the blobs no other snapshot links."""
    where.manifest.unlink(missing_ok=True)
    if not where.snapshot.exists():
        return 0
    shared = _linked_blobs(where.repo_folder, excluding=where.snapshot)
    freed = 0
    for entry in where.snapshot.rglob("*"):
        if entry.is_symlink():
            blob = entry.resolve()
            if blob.is_file() and blob not in shared:
                freed += blob.stat().st_size
                blob.unlink()
        elif entry.is_file():
            freed += entry.stat().st_size
    shutil.rmtree(where.snapshot)
    _remove_if_unused(where.repo_folder)
    return freed


def _linked_blobs(repo_folder: Path, *, excluding: Path) -> set[Path]:
    """Blobs that snapshots other than ``excluding`` still point at (hub revisions share unchanged files)."""
    linked: set[Path] = set()
    for snapshot in (repo_folder / "snapshots").glob("*"):
        if snapshot != excluding:
            linked.update(p.resolve() for p in snapshot.rglob("*") if p.is_symlink())
    return linked


def _remove_if_unused(repo_folder: Path) -> None:
    """Drop a repo folder with no snapshot left (its refs/ and emptied blobs/ serve nothing)."""
    snapshots = repo_folder / "snapshots"
    if not snapshots.exists() or not any(snapshots.iterdir()):
        shutil.rmtree(repo_folder, ignore_errors=True)
