"""What the fleet gateway's Modal app needs to know, as one JSON document baked into its image.

Like a model's bundle (``bundle.py``): the gateway container has no fleet.toml and no
``models/``, so the deploy computes the gateway's config, each model's endpoint URL, GPU
type and count (for cost) and the price table here, and the app module
(``gateway_entry``) rebuilds the same app from ``FLEET_MODAL_GATEWAY_BUNDLE`` in the
deploying process and in every container.
"""

from __future__ import annotations

import base64
import binascii
import os

from pydantic import BaseModel, ConfigDict, Field

from modelfleet.errors import FleetError
from modelfleet.gateway.config import GatewayConfig

GATEWAY_BUNDLE_ENV = "FLEET_MODAL_GATEWAY_BUNDLE"
GATEWAY_APP_SUFFIX = "-gateway"
# The keys of the proxy-token Secret the gateway reads (the names CI already uses for a proxy token).
PROXY_TOKEN_ID_KEY = "FLEET_PROXY_TOKEN_ID"
PROXY_TOKEN_SECRET_KEY = "FLEET_PROXY_TOKEN_SECRET"


class GatewayBundleError(FleetError):
    """The gateway app module cannot tell what it serves."""


class ModelEndpoint(BaseModel):
    """One model as the gateway reaches it on Modal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="The model's web endpoint (behind Modal proxy auth unless the model is public).")
    gpu_type: str = Field(description="GPU type, priced from the fleet's table.")
    gpu_count: int = Field(ge=1, description="GPUs per container (GPU-seconds count all of them).")


class GatewayBundle(BaseModel):
    """Everything the gateway app needs: its name, [gateway], the models' endpoints, prices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_name: str = Field(description="Modal app name (`<prefix>-gateway`).")
    modal_environment: str = Field(description="Modal environment of the app and its keys Dict.")
    config: GatewayConfig = Field(description="fleet.toml's [gateway] table.")
    endpoints: dict[str, ModelEndpoint] = Field(description="Served name -> endpoint.")
    prices: dict[str, float] = Field(description="USD per GPU-hour by GPU type.")

    def to_env(self) -> str:
        """Base64 of the JSON (it also becomes an image ENV line, as a model bundle does)."""
        return base64.b64encode(self.model_dump_json().encode()).decode()

    @classmethod
    def from_env(cls, value: str) -> GatewayBundle:
        """Parse ``FLEET_MODAL_GATEWAY_BUNDLE``; a damaged value is one clear error."""
        try:
            return cls.model_validate_json(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError) as error:
            raise GatewayBundleError(
                f"{GATEWAY_BUNDLE_ENV} is not a gateway bundle ({error.__class__.__name__}); unset it"
            ) from None


def gateway_app_name(app_prefix: str) -> str:
    """``<prefix>-gateway``: beside the models' ``<prefix>-<model>`` apps (no model folder may be named gateway)."""
    return app_prefix + GATEWAY_APP_SUFFIX


def load_gateway_bundle() -> GatewayBundle:
    """The bundle this process builds the gateway app for (set by the deploy, baked into the image)."""
    raw = os.environ.get(GATEWAY_BUNDLE_ENV)
    if not raw:
        raise GatewayBundleError(
            f"{GATEWAY_BUNDLE_ENV} is not set: the gateway app is deployed by `fleet deploy-all` (target modal)"
        )
    return GatewayBundle.from_env(raw)
