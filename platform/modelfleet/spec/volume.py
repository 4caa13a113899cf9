"""Declared volumes (``volumes/<name>.toml``): where weights and vLLM's compile cache live."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from modelfleet.spec.base import StrictModel


class VolumeSpec(StrictModel):
    """One Modal Volume (v2), or a folder under ``.fleet/volumes/`` on the local target."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="Volume name on Modal.")
    purpose: Literal["weights", "compile-cache"] = Field(
        description="`weights`: Hugging Face cache layout; `compile-cache`: vLLM's VLLM_CACHE_ROOT."
    )
    mount_path: str = Field(pattern=r"^/[\w./-]+$", description="Where serving containers mount it.")
    read_only_when_serving: bool = Field(
        description="Serving containers mount it read-only; only the fleet's jobs write it."
    )
    description: str = Field(default="", description="Why this volume exists.")

    @model_validator(mode="after")
    def _weights_are_read_only(self) -> VolumeSpec:
        if self.purpose == "weights" and not self.read_only_when_serving:
            raise ValueError(
                "a weights volume must be mounted read-only by serving containers: "
                "set read_only_when_serving = true (seeding jobs write it)"
            )
        return self
