"""The deploy report as typed records: one model per step's part, and the report that holds them.

``<state>/reports/<model>.json`` is written by four separate commands (deploy, snapshot,
smoke, rollback) and read by ``fleet report`` and CI, so its shape is a contract: every
part is a :class:`~modelfleet.postdeploy.record.Record` here, and nothing else in the
platform reaches into it with string keys. The JSON is the one written before these
types existed (same keys, same nesting), so a report file of an earlier version loads;
one that does not fits says which field of which file is wrong.

Outcomes come from the targets, but this package speaks HTTP and must need nothing
above it: :class:`Outcome` is the shape of a target's outcome, not an import of it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Protocol

from pydantic import SerializerFunctionWrapHandler, computed_field, model_serializer

from modelfleet.postdeploy.record import Record
from modelfleet.postdeploy.smoke import SmokeReport
from modelfleet.postdeploy.snapshot import SnapshotReport

Step = Literal["deploy", "snapshot", "smoke", "rollback"]
STEPS: tuple[Step, ...] = ("deploy", "snapshot", "smoke", "rollback")
StepResult = Literal["ok", "failed", "skipped", "unchanged"]


class Outcome(Protocol):
    """What a target says happened to one model (``targets.base.DeployOutcome`` has this shape)."""

    @property
    def model(self) -> str: ...
    @property
    def app(self) -> str: ...
    @property
    def result(self) -> StepResult: ...
    @property
    def seconds(self) -> float: ...
    @property
    def version(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def detail(self) -> str: ...


class DeployPart(Record):
    """``fleet deploy``'s part: which app, what happened, the version it made live."""

    STEP: ClassVar[Step] = "deploy"

    target: str
    app: str
    result: StepResult
    version: str = ""
    seconds: float
    url: str = ""
    detail: str = ""
    at: str = ""

    @classmethod
    def of(cls, outcome: Outcome, *, target: str) -> DeployPart:
        """The part for a target's deploy outcome."""
        return cls(
            target=target,
            app=outcome.app,
            result=outcome.result,
            version=outcome.version,
            seconds=round(outcome.seconds, 2),
            url=outcome.url,
            detail=outcome.detail,
        )


class SnapshotPart(SnapshotReport):
    """``fleet snapshot``'s part: every forced cold start, on which target, for which version."""

    STEP: ClassVar[Step] = "snapshot"

    target: str
    version: str = ""
    at: str = ""

    @classmethod
    def of(cls, report: SnapshotReport, *, target: str, version: str) -> SnapshotPart:
        """The part for what :func:`~modelfleet.postdeploy.snapshot.build_snapshot` saw."""
        return cls(**dict(report), target=target, version=version)

    @model_serializer(mode="wrap")
    def _answers_only_when_compared(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A snapshot without golden answers compared writes the part exactly as before the comparison existed."""
        dumped: dict[str, Any] = handler(self)
        if self.answers_match is None:
            dumped.pop("answers_match", None)
            dumped.pop("answers_detail", None)
        return dumped


_GATE_FIELDS = ("quality", "baseline_key", "gate_seconds")


class SmokePart(SmokeReport):
    """``fleet smoke``'s part: every check, and how the endpoint said it booted."""

    STEP: ClassVar[Step] = "smoke"

    target: str
    boot: str = ""
    boot_seconds: float | None = None
    version: str = ""
    at: str = ""
    # The quality gate's baseline key (``state.BaselineKey.slug``) and its whole time; absent before the gate.
    baseline_key: str = ""
    gate_seconds: float | None = None

    @classmethod
    def of(
        cls,
        report: SmokeReport,
        *,
        target: str,
        boot: str,
        boot_seconds: float | None,
        version: str,
        baseline_key: str = "",
        gate_seconds: float | None = None,
    ) -> SmokePart:
        """The part for what :func:`~modelfleet.postdeploy.smoke.run_smoke` saw, and the boot ``/health`` reported."""
        return cls(
            **dict(report),
            target=target,
            boot=boot,
            boot_seconds=boot_seconds,
            version=version,
            baseline_key=baseline_key,
            gate_seconds=gate_seconds,
        )

    @model_serializer(mode="wrap")
    def _gate_fields_only_when_gated(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A model without a golden.toml writes the part exactly as before the gate existed."""
        dumped: dict[str, Any] = handler(self)
        if not self.quality:
            for name in _GATE_FIELDS:
                dumped.pop(name, None)
        return dumped


class RollbackPart(Record):
    """A rollback's part (``fleet rollback`` or ``smoke --rollback-on-failure``).

    ``to_version`` is the version that serves after it (a rollback is itself a new
    version on Modal); ``detail`` names the version it restored, or why it did not.
    """

    STEP: ClassVar[Step] = "rollback"

    target: str
    result: StepResult
    to_version: str = ""
    seconds: float = 0.0
    detail: str = ""
    at: str = ""

    @classmethod
    def of(cls, outcome: Outcome, *, target: str) -> RollbackPart:
        """The part for a target's rollback outcome."""
        return cls(
            target=target,
            result=outcome.result,
            to_version=outcome.version,
            seconds=round(outcome.seconds, 2),
            detail=outcome.detail,
        )


Part = DeployPart | SnapshotPart | SmokePart | RollbackPart


class ReportParts(Record):
    """The parts recorded so far; a step that has not run is absent from the JSON (not ``null``)."""

    deploy: DeployPart | None = None
    snapshot: SnapshotPart | None = None
    smoke: SmokePart | None = None
    rollback: RollbackPart | None = None

    @model_serializer(mode="wrap")
    def _present_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        return {step: part for step, part in dumped.items() if part is not None}


class DeployReport(Record):
    """One model's report file: its name, when a step last wrote, and each step's part."""

    model: str
    updated: str = ""
    parts: ReportParts = ReportParts()

    def with_part(self, part: Part, *, now: str) -> DeployReport:
        """This report with ``part`` (stamped ``now``) in its step's place; a deploy part starts a new report."""
        stamped = part.model_copy(update={"at": now})
        parts = ReportParts() if part.STEP == "deploy" else self.parts
        return DeployReport(model=self.model, updated=now, parts=parts.model_copy(update={part.STEP: stamped}))


class ChecksPassed(Record):
    """How many smoke checks passed, of how many."""

    passed: int
    total: int


class ReportSummary(Record):
    """One model's row of ``fleet report``: version, boot kind, cold starts, smoke, rollback, overall ok."""

    model: str
    version: str
    deploy: StepResult | None
    boot: str
    snapshot: str | None
    cold_start_ttft_seconds: float | None
    cold_start_boot_seconds: float | None
    restored_ttft_seconds: float | None
    restored_boot_seconds: float | None
    smoke: Literal["passed", "failed"] | None
    smoke_checks: ChecksPassed | None
    quality_checks: ChecksPassed | None = None
    rollback: RollbackPart | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """No step failed: the deploy did not fail, the snapshot (if built) is ok, the smoke (if run) passed."""
        return self.deploy != "failed" and self.snapshot_ok and self.smoke != "failed"

    @property
    def snapshot_ok(self) -> bool:
        """The snapshot step, if it ran, restored or measured a plain cold start."""
        return self.snapshot in (None, "restored", "plain-cold-start")


def summarize(report: DeployReport) -> ReportSummary:
    """One model's row: version, boot kind, cold start before/after the snapshot, smoke, rollback."""
    deploy, snapshot, smoke, rollback = (
        report.parts.deploy,
        report.parts.snapshot,
        report.parts.smoke,
        report.parts.rollback,
    )
    version = next((p.version for p in (deploy, snapshot, smoke) if p and p.version), "")
    return ReportSummary(
        model=report.model,
        version=version,
        deploy=deploy.result if deploy else None,
        boot=_boot_kind(snapshot, smoke),
        snapshot=snapshot.result if snapshot else None,
        cold_start_ttft_seconds=snapshot.cold_start_ttft_seconds if snapshot else None,
        cold_start_boot_seconds=snapshot.cold_start_boot_seconds if snapshot else None,
        restored_ttft_seconds=snapshot.restored_ttft_seconds if snapshot else None,
        restored_boot_seconds=snapshot.restored_boot_seconds if snapshot else None,
        smoke=None if smoke is None else ("passed" if smoke.ok else "failed"),
        smoke_checks=ChecksPassed(passed=sum(c.ok for c in smoke.checks), total=len(smoke.checks)) if smoke else None,
        quality_checks=(
            ChecksPassed(passed=sum(c.ok for c in smoke.quality), total=len(smoke.quality))
            if smoke and smoke.quality
            else None
        ),
        rollback=rollback,
    )


def _boot_kind(snapshot: SnapshotPart | None, smoke: SmokePart | None) -> str:
    if smoke and smoke.boot:
        return smoke.boot
    return snapshot.tries[-1].boot if snapshot and snapshot.tries else ""
