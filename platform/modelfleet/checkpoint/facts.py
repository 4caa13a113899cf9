"""What reading a checkpoint yields, and the one error for a checkpoint that cannot be read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelfleet.errors import FleetError

if TYPE_CHECKING:
    from modelfleet.checkpoint.config import ModelConfig
    from modelfleet.checkpoint.tensors import WeightsFacts


class CheckpointError(FleetError):
    """The checkpoint could not be read (hub refused, no connection, files missing); the message names the fix."""


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint's config and weight headers, and where they were read."""

    config: ModelConfig
    weights: WeightsFacts
    repo: str | None
    """``org/name`` on the hub; None for a local checkout read without one."""
    revision: str | None
    """The 40-hex commit the files were read at; None when unknown (a local checkout)."""
    requested: str | None
    """The revision as the user typed it (a branch, tag or commit)."""
    local_path: str | None
    """The directory read by ``--from-dir``; None for the hub."""
    gated: bool = False
    private: bool = False

    @property
    def needs_token(self) -> bool:
        """Whether serving needs HF_TOKEN (a gated or private repo)."""
        return self.gated or self.private
