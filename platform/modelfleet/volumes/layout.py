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

from modelfleet.catalog import CatalogModel
from modelfleet.settings import FleetSettings
from modelfleet.spec.weights import HuggingFaceWeights, LocalWeights, PypiWeights

MANIFEST_DIR = ".manifests"


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
    source = local_source_path(model)
    digest = hashlib.sha256(str(source).encode()).hexdigest()[:16]
    return WeightsLocation(volume_root, f"local/{model.name}", digest)


def local_source_path(model: CatalogModel) -> Path:
    """A local source's directory, relative paths resolved against the model folder."""
    weights = model.spec.weights
    assert isinstance(weights, LocalWeights)
    path = Path(weights.path).expanduser()
    return path if path.is_absolute() else (model.folder / path).resolve()


def checkpoint_dir(model: CatalogModel, volume_root: Path) -> Path:
    """The directory vLLM's ``--model`` points at for this model."""
    return location(model, volume_root).snapshot


def local_volume_root(settings: FleetSettings, purpose: str = "weights") -> Path:
    """The local target's folder for a declared volume (``.fleet/volumes/<name>``)."""
    from modelfleet.catalog import load_catalog

    volumes = load_catalog(settings).volumes
    name = next((v.name for v in volumes.values() if v.purpose == purpose), f"modelfleet-{purpose}")
    return settings.state_path / "volumes" / name
