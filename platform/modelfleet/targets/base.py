"""The lifecycle every target implements, and the outcomes it reports.

Outcomes are plain data so the CLI can print one table for both targets and CI can
write them to a report without knowing where the model runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from modelfleet.catalog import CatalogModel
from modelfleet.settings import FleetSettings
from modelfleet.state import FleetState

Result = Literal["ok", "failed", "skipped", "unchanged"]


@dataclass(frozen=True)
class Credentials:
    """A proxy-auth token pair (``wk-...`` / ``ws-...``), sent as Modal's headers."""

    key: str
    secret: str

    def headers(self) -> dict[str, str]:
        """Modal's proxy-auth headers; the local edge accepts exactly the same."""
        return {"Modal-Key": self.key, "Modal-Secret": self.secret}

    def __repr__(self) -> str:
        return f"Credentials(key={self.key!r}, secret='***')"


@dataclass(frozen=True)
class DeployOutcome:
    """What happened to one model in a deploy."""

    model: str
    app: str
    result: Result
    seconds: float
    version: str = ""
    url: str = ""
    detail: str = ""


@dataclass(frozen=True)
class ModelStatus:
    """One running (or declared) model as ``fleet status`` shows it."""

    model: str
    url: str
    state: str
    detail: dict[str, str] = field(default_factory=dict)


class Target(Protocol):
    """Seed, deploy, status, teardown: the same verbs on Modal and on this machine."""

    name: str
    settings: FleetSettings

    def deploy(self, models: list[CatalogModel], *, tag: str) -> list[DeployOutcome]:
        """Seed if needed and deploy (or start) each model; one failure never stops the others."""
        ...

    def deployed_state(self) -> FleetState:
        """What this target has deployed, for ``fleet plan`` (the modal.Dict, or .fleet/ locally)."""
        ...

    def endpoint(self, model: CatalogModel) -> str:
        """The base URL clients use for this model (no trailing slash)."""
        ...

    def status(self, models: list[CatalogModel]) -> list[ModelStatus]:
        """What runs, where, and whether it is healthy."""
        ...

    def teardown(self, models: list[CatalogModel]) -> list[DeployOutcome]:
        """Stop the models' apps or processes."""
        ...
