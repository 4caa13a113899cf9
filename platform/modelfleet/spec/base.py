"""The strict base every declaration model shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A config block: unknown keys are errors (a typo must never be silently ignored),
    and values are frozen once validated so a spec cannot drift while it is deployed."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
