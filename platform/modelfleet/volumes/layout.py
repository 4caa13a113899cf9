"""Where a model's weights live on a volume: the Hugging Face cache layout for every source.

``<root>/models--<org>--<name>/snapshots/<revision>/`` is what ``HF_HUB_CACHE``
expects, so hub downloads land there natively, and PyPI or local sources use the same
shape (org ``pypi`` / ``local``) so one volume holds the whole fleet. Manifests live
beside, in ``<root>/.manifests/``, never inside a checkpoint vLLM reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from modelfleet.catalog import Catalog, CatalogModel, load_catalog
from modelfleet.errors import FleetError
from modelfleet.settings import FleetSettings
from modelfleet.spec.volume import VolumeSpec
from modelfleet.spec.weights import HuggingFaceWeights, LocalWeights, PypiWeights

MANIFEST_DIR = ".manifests"
VolumePurpose = Literal["weights", "compile-cache"]


class VolumeNotDeclaredError(FleetError):
    """``volumes/`` declares no volume, or several, of a purpose the fleet needs."""


@dataclass(frozen=True)
class WeightsLocation:
    """One model revision on a volume: repo folder, revision, and derived paths."""

    root: Path
    repo_id: str  # "org/name"
    revision: str

    @property
    def repo_folder(self) -> Path:
        """``models--org--name``: the hub cache's folder for the repo."""
        return self.root / ("models--" + self.repo_id.replace("/", "--"))

    @property
    def snapshot(self) -> Path:
        """The checkpoint directory vLLM is pointed at."""
        return self.repo_folder / "snapshots" / self.revision

    @property
    def manifest(self) -> Path:
        """The manifest proving this revision complete; written last."""
        return self.root / MANIFEST_DIR / f"{self.repo_id.replace('/', '--')}--{self.revision}.json"


def location(model: CatalogModel, volume_root: Path) -> WeightsLocation:
    """Where ``model``'s declared weights live under ``volume_root``."""
    weights = model.spec.weights
    if isinstance(weights, HuggingFaceWeights):
        return WeightsLocation(volume_root, weights.repo, weights.revision)
    if isinstance(weights, PypiWeights):
        # The pinned version and file hash identify the bytes, like a commit does.
        return WeightsLocation(volume_root, f"pypi/{weights.package}", f"{weights.version}-{weights.sha256[:16]}")
    assert isinstance(weights, LocalWeights)
    return WeightsLocation(volume_root, f"local/{model.name}", _directory_fingerprint(local_source_path(model)))


def _directory_fingerprint(source: Path) -> str:
    """A revision id for a local directory: its path and every file's name, size and mtime.

    A local directory has no commit hash; this one changes when the directory does, so an
    edited checkpoint is seeded again instead of the stale copy being served.
    """
    digest = hashlib.sha256(str(source).encode())
    if source.is_dir():
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            stat = file.stat()
            digest.update(f"\0{file.relative_to(source)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def local_source_path(model: CatalogModel) -> Path:
    """A local source's directory, relative paths resolved against the model folder."""
    weights = model.spec.weights
    assert isinstance(weights, LocalWeights)
    path = Path(weights.path).expanduser()
    return path if path.is_absolute() else (model.folder / path).resolve()


def checkpoint_dir(model: CatalogModel, volume_root: Path) -> Path:
    """The directory vLLM's ``--model`` points at for this model."""
    return location(model, volume_root).snapshot


def local_volume_root(settings: FleetSettings, purpose: VolumePurpose = "weights") -> Path:
    """The local target's folder for the declared volume of ``purpose`` (``.fleet/volumes/<name>``).

    The folder is named like the Modal Volume (:func:`declared_volume`), so the two
    targets talk about the same thing.
    """
    return local_volume_folder(settings, declared_volume(load_catalog(settings), purpose))


def local_volume_folder(settings: FleetSettings, volume: VolumeSpec) -> Path:
    """Where the local target keeps the files of a declared volume: ``.fleet/volumes/<name>``."""
    return settings.state_path / "volumes" / volume.name


def declared_volume(catalog: Catalog, purpose: VolumePurpose) -> VolumeSpec:
    """The one volume of ``purpose`` that ``volumes/*.toml`` declares: the fleet's only lookup of it.

    Both targets, the Modal bundle and the CLI name their volumes through here, so a fleet
    without (or with two) weights volumes fails the same way everywhere, with the fix,
    instead of one target falling back to a default name the other never uses.
    """
    found = [v for v in catalog.volumes.values() if v.purpose == purpose]
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(sorted(v.name for v in found))
        raise VolumeNotDeclaredError(
            f"volumes/: several volumes with purpose = {purpose!r} ({names}); keep exactly one"
        )
    broken = [p.render(catalog.root) for p in catalog.problems if p.file.parent.name == "volumes"]
    why = f" ({'; '.join(broken)})" if broken else ""
    raise VolumeNotDeclaredError(
        f"volumes/: no valid volume with purpose = {purpose!r}{why}; declare one (e.g. volumes/{purpose}.toml) "
        "so both targets know where weights and vLLM's cache live"
    )


def repo_id_of(repo_folder: Path) -> str:
    """``models--org--name`` -> ``org/name`` (the inverse of :attr:`WeightsLocation.repo_folder`)."""
    return repo_folder.name.removeprefix("models--").replace("--", "/", 1)


def remove_snapshot_file(link: Path) -> None:
    """Remove a snapshot entry and, for hub downloads, the blob it points to, so a new fetch rewrites it.

    A damaged blob is damaged for every revision sharing it, so it goes even if another
    snapshot links it; that revision then fails verification and is fetched again.
    """
    target = link.resolve() if link.is_symlink() else None
    link.unlink(missing_ok=True)
    if target is not None:
        target.unlink(missing_ok=True)
