"""What a model's Modal app needs to know, as one JSON document baked into its image.

The app module (``entry``) is imported twice: by ``modal deploy`` on the deploying
machine, and again inside every container Modal starts. The container has neither
the repo's ``models/`` folder nor ``fleet.toml``, so the deploy computes this bundle
from the catalog, passes it to the deploy subprocess in ``FLEET_MODAL_BUNDLE``, and
the image carries the same variable: both imports build the very same app from the
very same effective spec, and nothing in the container re-reads (or re-merges)
configuration.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field

from modelfleet.catalog import Catalog, CatalogModel
from modelfleet.errors import FleetError
from modelfleet.settings import FleetSettings
from modelfleet.spec.model import ModelSpec
from modelfleet.volumes.layout import checkpoint_dir, declared_volume

BUNDLE_ENV = "FLEET_MODAL_BUNDLE"
MODEL_ENV = "FLEET_MODEL"
# Where the model folder "is" inside a container: only error messages name it.
CONTAINER_MODELS_DIR = PurePosixPath("/fleet/models")


class BundleError(FleetError):
    """The app module cannot tell which model it serves."""


class MountedVolume(BaseModel):
    """A declared volume and where containers mount it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Modal Volume name.")
    mount_path: str = Field(description="Mount path in containers.")
    environment: str | None = Field(
        default=None,
        description="Modal environment the volume lives in; None: the app's own (fleet.toml weights_environment).",
    )


class ModelBundle(BaseModel):
    """Everything the app module needs, for one model: name, app, spec, volumes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="Model folder name.")
    app_name: str = Field(description="Modal app name (`<prefix>-<model>`).")
    served_name: str = Field(description="Name clients pass as `model`.")
    spec_hash: str = Field(description="Hash of the effective spec (what `fleet plan` compares).")
    spec: ModelSpec = Field(description="The effective spec: model.toml merged with fleet.toml defaults.")
    weights: MountedVolume = Field(description="The weights volume (read-only when serving).")
    compile_cache: MountedVolume = Field(description="vLLM's compile-cache volume (read-write).")
    checkpoint: str = Field(description="Checkpoint directory inside the weights mount (vLLM's --model).")

    def to_env(self) -> str:
        """The form carried in ``FLEET_MODAL_BUNDLE``: base64 of the JSON.

        Base64 because the value also becomes a Dockerfile ``ENV`` line, where quotes
        and braces of raw JSON (vLLM flags carry JSON) are at the mercy of quoting rules.
        """
        return base64.b64encode(self.model_dump_json().encode()).decode()

    @classmethod
    def from_env(cls, value: str) -> ModelBundle:
        """Parse ``FLEET_MODAL_BUNDLE``; a damaged value is a clear error, not a traceback."""
        try:
            return cls.model_validate_json(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError) as error:
            raise BundleError(f"{BUNDLE_ENV} is not a model bundle ({error.__class__.__name__}); unset it") from None

    def catalog_model(self) -> CatalogModel:
        """A catalog entry for code shared with the local target (the seeder), in a container."""
        return CatalogModel(name=self.model, folder=Path(CONTAINER_MODELS_DIR / self.model), spec=self.spec)


def make_bundle(model: CatalogModel, catalog: Catalog, settings: FleetSettings) -> ModelBundle:
    """The bundle for ``model``: its effective spec and the fleet's declared volumes."""
    weights = declared_volume(catalog, "weights")
    cache = declared_volume(catalog, "compile-cache")
    return ModelBundle(
        model=model.name,
        app_name=settings.app_name(model.name),
        served_name=model.served_name,
        spec_hash=model.spec_hash(),
        spec=model.spec,
        # One weights volume for every environment (seeded once, promoted without a copy).
        weights=MountedVolume(
            name=weights.name, mount_path=weights.mount_path, environment=settings.weights_environment
        ),
        compile_cache=MountedVolume(name=cache.name, mount_path=cache.mount_path),
        checkpoint=str(checkpoint_dir(model, Path(weights.mount_path))),
    )


def load_bundle() -> ModelBundle:
    """The bundle of the model this process builds an app for.

    ``FLEET_MODAL_BUNDLE`` wins (set by ``fleet deploy`` and baked into the image);
    otherwise ``FLEET_MODEL`` names a folder of the repo, which allows a plain
    ``FLEET_MODEL=NAME modal deploy -m modelfleet.targets.modal.entry`` by hand.
    """
    raw = os.environ.get(BUNDLE_ENV)
    if raw:
        return ModelBundle.from_env(raw)
    name = os.environ.get(MODEL_ENV)
    if not name:
        raise BundleError(
            f"set {MODEL_ENV}=<model folder> (or use `fleet deploy NAME`) to build a model's Modal app; "
            f"neither {MODEL_ENV} nor {BUNDLE_ENV} is set"
        )
    from modelfleet.catalog import UnknownModelError, load_catalog

    settings = FleetSettings()
    catalog = load_catalog(settings)
    try:
        model = catalog.require(name)
    except UnknownModelError as error:
        raise BundleError(str(error)) from None
    return make_bundle(model, catalog, settings)
