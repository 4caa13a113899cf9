"""The lifecycle every target implements, and the outcomes it reports.

Outcomes are plain data so the CLI can print one table for both targets and CI can
write them to a report without knowing where the model runs.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from modelfleet.catalog import CatalogModel
from modelfleet.errors import FleetError
from modelfleet.runtime.tokens import Credentials
from modelfleet.settings import FleetSettings
from modelfleet.state import FleetState

if TYPE_CHECKING:
    from modelfleet.volumes.inventory import WeightsVolume

Result = Literal["ok", "failed", "skipped", "unchanged"]


class TargetCredentialsError(FleetError):
    """This machine holds no credentials for the target (no Modal token, say).

    ``fleet plan --fallback-state`` catches it to plan against an exported state
    instead; importing it does not import the target's client.
    """


# Progress events: (model, stage, detail), e.g. ("smollm2-135m", "seeding", "120 MB/270 MB").
# The CLI turns them into a live view; targets never print themselves.
OnEvent = Callable[[str, str, str], None]


def ignore_event(model: str, stage: str, detail: str) -> None:
    """The default progress sink: nothing is shown."""


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
    """Seed, deploy, status, cold start, rollback, teardown: the same verbs on Modal and on this machine.

    Every verb the CLI uses is here, with one signature on both targets; where a target
    cannot do something it says so in its answer (a "skipped" outcome, a FleetError with
    the way to do it there), so the CLI never asks which target it talks to.
    """

    name: str
    settings: FleetSettings
    # Modal deploys are tagged with the git commit, so a dirty tree is refused there;
    # the local target serves the working tree as it is.
    requires_clean_tree: bool
    # Whether deploys are snapshotted (Modal) or every boot is a plain cold start (local).
    supports_snapshots: bool

    def deploy(self, models: list[CatalogModel], *, tag: str, on_event: OnEvent = ignore_event) -> list[DeployOutcome]:
        """Seed if needed and deploy (or start) each model; one failure never stops the others."""
        ...

    def deploy_gateway(self, *, tag: str) -> DeployOutcome | None:
        """Bring the fleet gateway up to date with the deployed models; None where ``deploy`` already did."""
        ...

    def seed(self, models: list[CatalogModel], *, on_event: OnEvent = ignore_event) -> list[DeployOutcome]:
        """Put each model's weights on its volume (verified); a seeded model is not downloaded again."""
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

    def force_cold_start(self, model: CatalogModel) -> int:
        """Stop what serves the model and return once none of it is left, so the next request boots afresh.

        Returns how many containers (Modal) or engines (local) were stopped, 0 when none was
        warm; ``fleet snapshot`` calls it before each try.
        """
        ...

    def rollback(self, model: CatalogModel, to_version: str | None = None) -> DeployOutcome:
        """Serve ``to_version`` (``v3``), or the version before the live one, again; record it in the state.

        A target that keeps no versions answers a "skipped" outcome that says so: ``fleet
        rollback`` then exits 1, ``fleet smoke --rollback-on-failure`` records it as skipped.
        """
        ...

    def weights_volume(self) -> WeightsVolume:
        """The weights volume as this machine reads it (list, verify, prune what is seeded).

        A FleetError naming the target's own tool where its volume is not readable from here.
        """
        ...

    def log_path(self, model: CatalogModel) -> Path:
        """A local file with the model's server output (targets without one raise a FleetError saying where logs are)."""
        ...

    def temporary_credentials(self, purpose: str) -> AbstractContextManager[Credentials]:
        """Credentials valid for one command (``fleet call``); a FleetError where tokens cannot be minted here."""
        ...
