"""The deploy report: per model, what the deploy, snapshot, smoke and rollback steps saw.

CI runs each step as its own command (``fleet deploy``, ``fleet snapshot``, ``fleet
smoke``, ``fleet rollback``), so no single process sees the whole story. Each step adds
its part (a typed record, ``parts.py``) to ``<state>/reports/<model>.json``; ``fleet
report`` composes them into one row per model (Markdown for the job summary, JSON for
machines). A deploy part starts a new report: results of an earlier deploy must never
be shown as this one's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from modelfleet.errors import FleetError
from modelfleet.files import write_atomic
from modelfleet.postdeploy.parts import (
    DeployPart,
    DeployReport,
    Outcome,
    Part,
    ReportSummary,
    RollbackPart,
    SnapshotPart,
    summarize,
)
from modelfleet.settings import FleetSettings


class ReportError(FleetError):
    """A report file cannot be read."""


class ReportBook:
    """The folder of per-model report files; each step merges its part in atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, model: str) -> Path:
        """Where a model's report lives."""
        return self.folder / f"{model}.json"

    def add(self, model: str, part: Part) -> DeployReport:
        """Record one step's part (replacing an earlier part of the same step); returns the whole report."""
        earlier = None if part.STEP == "deploy" else self.read(model)
        report = (earlier or DeployReport(model=model)).with_part(part, now=_now())
        write_atomic(self.path(model), report.model_dump_json(indent=2) + "\n")
        return report

    def read(self, model: str) -> DeployReport | None:
        """A model's report, or None when no step has run for it; a file that does not fit is a ReportError."""
        path = self.path(model)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as error:
            raise ReportError(f"{path}: unreadable report ({error.__class__.__name__}); delete it") from None
        try:
            return DeployReport.model_validate(data)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(the whole file)"
            raise ReportError(
                f"{path}: {where}: {first['msg']} ({error.error_count()} problem(s)); this report was not written by "
                "this version of fleet: delete it, or run the post-deploy steps again"
            ) from None

    def all(self) -> list[DeployReport]:
        """Every model's report, by model name."""
        if not self.folder.is_dir():
            return []
        reports = [self.read(p.stem) for p in sorted(self.folder.glob("*.json"))]
        return [r for r in reports if r is not None]


def report_book(settings: FleetSettings) -> ReportBook:
    """The fleet's reports folder: ``<state>/reports``."""
    return ReportBook(settings.state_path / "reports")


def record_deploys(settings: FleetSettings, outcomes: Iterable[Outcome], *, target: str) -> None:
    """Start each deployed model's report with its deploy part (called by ``fleet deploy``)."""
    book = report_book(settings)
    for outcome in outcomes:
        if outcome.result != "skipped":
            book.add(outcome.model, DeployPart.of(outcome, target=target))


def record_rollback(settings: FleetSettings, outcome: Outcome, *, target: str) -> None:
    """Add a rollback part (called for ``fleet rollback`` and ``fleet smoke --rollback-on-failure`` alike)."""
    report_book(settings).add(outcome.model, RollbackPart.of(outcome, target=target))


def render_json(reports: list[DeployReport]) -> str:
    """The summaries and every part, for machines."""
    rows = [(summarize(r), r) for r in reports]
    models = [{**row.model_dump(mode="json"), "parts": r.parts.model_dump(mode="json")} for row, r in rows]
    return json.dumps({"models": models, "ok": all(row.ok for row, _ in rows)}, indent=2)


def render_markdown(reports: list[DeployReport]) -> str:
    """A table with one row per model, then what went wrong for each model that failed a step."""
    lines = ["## Deploy report", ""]
    if not reports:
        return "\n".join([*lines, "No post-deploy step has run for these models.", ""])
    lines += [
        "| model | version | boot | cold start (no snapshot) | cold start (snapshot) | smoke | quality | rollback |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    notes: list[str] = []
    gates: list[str] = []
    for report in reports:
        row = summarize(report)
        lines.append(
            "| "
            + " | ".join(
                _cell(value)
                for value in (
                    row.model,
                    row.version or "-",
                    row.boot or "-",
                    _timing(row.cold_start_ttft_seconds, row.cold_start_boot_seconds),
                    _restored_cell(row, report.parts.snapshot),
                    _smoke_cell(row),
                    _quality_cell(row),
                    _rollback_cell(row.rollback),
                )
            )
            + " |"
        )
        notes += _problems(report)
        gates += _quality_lines(report)
    lines.append("")
    if gates:
        lines += ["### Quality gate", "", *gates, ""]
    if notes:
        lines += ["### Problems", "", *notes, ""]
    return "\n".join(lines)


def _quality_cell(row: ReportSummary) -> str:
    if row.quality_checks is None:
        return "-"
    passed, total = row.quality_checks.passed, row.quality_checks.total
    return f"{'passed' if passed == total else '**failed**'} {passed}/{total}"


def _quality_lines(report: DeployReport) -> list[str]:
    """Every quality check of the model, passed or not: what the gate compared and by how much."""
    smoke = report.parts.smoke
    if smoke is None or not smoke.quality:
        return []
    timing = f" in {smoke.gate_seconds:.1f} s" if smoke.gate_seconds is not None else ""
    key = f", baseline key `{smoke.baseline_key}`" if smoke.baseline_key else ""
    lines = [f"- **{report.model}**{timing}{key}:"]
    for check in smoke.quality:
        mark = "ok" if check.ok else "**FAILED**"
        lines.append(f"  - `{check.name}` {mark}: {_cell(check.detail)}")
    return lines


def _timing(ttft: float | None, boot: float | None) -> str:
    if ttft is None:
        return "-"
    return f"{ttft:.1f} s to first token" + (f" (boot {boot:.1f} s)" if boot is not None else "")


def _restored_cell(row: ReportSummary, snapshot: SnapshotPart | None) -> str:
    if snapshot is None:
        return "-"
    if not snapshot.snapshots_enabled:
        return "snapshots off"
    if row.restored_ttft_seconds is None:
        return f"no restore ({snapshot.result}, {len(snapshot.tries)} tries)"
    return _timing(row.restored_ttft_seconds, row.restored_boot_seconds)


def _smoke_cell(row: ReportSummary) -> str:
    if row.smoke_checks is None:
        return "-"
    label = "passed" if row.smoke == "passed" else "**failed**"
    return f"{label} {row.smoke_checks.passed}/{row.smoke_checks.total}"


def _rollback_cell(rollback: RollbackPart | None) -> str:
    if not rollback:
        return "-"
    if rollback.result != "ok":
        return rollback.result
    # A rollback is itself a new version: the detail names the version it restored,
    # ``to_version`` the new version that now serves it.
    restored = (
        rollback.detail if rollback.detail.startswith("rolled back to ") else "rolled back to the previous version"
    )
    return f"{restored}, live as {rollback.to_version}" if rollback.to_version else restored


def _problems(report: DeployReport) -> list[str]:
    model, parts = report.model, report.parts
    notes = []
    if parts.deploy and parts.deploy.result == "failed":
        notes.append(f"- **{model}** deploy failed: {_cell(parts.deploy.detail)}")
    if parts.snapshot and parts.snapshot.answers_match is False:
        notes.append(
            f"- **{model}** snapshot: woken engine answered differently: {_cell(parts.snapshot.answers_detail)}"
        )
    elif parts.snapshot and not parts.snapshot.ok:
        failed = [t for t in parts.snapshot.tries if t.error]
        why = failed[-1].error if failed else f"no boot reported `restore` in {parts.snapshot.max_tries} tries"
        notes.append(f"- **{model}** snapshot {parts.snapshot.result}: {_cell(why)}")
    for check in parts.smoke.failures if parts.smoke else []:
        notes.append(f"- **{model}** smoke `{check.name}`: {_cell(check.detail)}")
    if parts.rollback and parts.rollback.detail:
        notes.append(f"- **{model}** rollback: {_cell(parts.rollback.detail)}")
    return notes


def _cell(value: object) -> str:
    """Table-safe text: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
