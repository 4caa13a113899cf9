"""The deploy report: per model, what the deploy, snapshot, smoke and rollback steps saw.

CI runs each step as its own command (``fleet deploy``, ``fleet snapshot``, ``fleet
smoke``, ``fleet rollback``), so no single process sees the whole story. Each step adds
its part to ``<state>/reports/<model>.json``; ``fleet report`` composes them into one
row per model (Markdown for the job summary, JSON for machines). A deploy part starts a
new report: results of an earlier deploy must never be shown as this one's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from modelfleet.errors import FleetError
from modelfleet.files import write_atomic
from modelfleet.settings import FleetSettings
from modelfleet.targets.base import DeployOutcome

Step = Literal["deploy", "snapshot", "smoke", "rollback"]
STEPS: tuple[Step, ...] = ("deploy", "snapshot", "smoke", "rollback")


class ReportError(FleetError):
    """A report file cannot be read."""


class ReportBook:
    """The folder of per-model report files; each step merges its part in atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, model: str) -> Path:
        """Where a model's report lives."""
        return self.folder / f"{model}.json"

    def add(self, model: str, step: Step, part: dict[str, Any]) -> dict[str, Any]:
        """Record one step's part (replacing an earlier part of the same step); returns the whole report."""
        report = {} if step == "deploy" else (self.read(model) or {})
        parts = dict(report.get("parts", {}))
        parts[step] = {**part, "at": _now()}
        report = {"model": model, "updated": _now(), "parts": parts}
        write_atomic(self.path(model), json.dumps(report, indent=2) + "\n")
        return report

    def read(self, model: str) -> dict[str, Any] | None:
        """A model's report, or None when no step has run for it."""
        try:
            data = json.loads(self.path(model).read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as error:
            raise ReportError(
                f"{self.path(model)}: unreadable report ({error.__class__.__name__}); delete it"
            ) from None
        return dict(data) if isinstance(data, dict) else None

    def all(self) -> list[dict[str, Any]]:
        """Every model's report, by model name."""
        if not self.folder.is_dir():
            return []
        reports = [self.read(p.stem) for p in sorted(self.folder.glob("*.json"))]
        return [r for r in reports if r is not None]


def report_book(settings: FleetSettings) -> ReportBook:
    """The fleet's reports folder: ``<state>/reports``."""
    return ReportBook(settings.state_path / "reports")


def record_deploys(settings: FleetSettings, outcomes: list[DeployOutcome], *, target: str) -> None:
    """Start each deployed model's report with its deploy part (called by ``fleet deploy``)."""
    book = report_book(settings)
    for outcome in outcomes:
        if outcome.result != "skipped":
            book.add(outcome.model, "deploy", deploy_part(outcome, target=target))


def record_rollback(settings: FleetSettings, outcome: DeployOutcome, *, target: str) -> None:
    """Add a rollback part (called by ``fleet rollback`` and ``fleet smoke --rollback-on-failure``)."""
    report_book(settings).add(outcome.model, "rollback", rollback_part(outcome, target=target))


def rollback_part(outcome: DeployOutcome, *, target: str) -> dict[str, Any]:
    """The rollback step's part: the new live version (``to_version``), what it restored (``detail``), whether it worked."""
    return {
        "target": target,
        "result": outcome.result,
        "to_version": outcome.version,
        "seconds": round(outcome.seconds, 2),
        "detail": outcome.detail,
    }


def deploy_part(outcome: DeployOutcome, *, target: str) -> dict[str, Any]:
    """The deploy step's part, from the target's outcome."""
    return {
        "target": target,
        "app": outcome.app,
        "result": outcome.result,
        "version": outcome.version,
        "seconds": round(outcome.seconds, 2),
        "url": outcome.url,
        "detail": outcome.detail,
    }


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """One model's row: version, boot kind, cold start before/after the snapshot, smoke, rollback."""
    parts: dict[str, dict[str, Any]] = report.get("parts", {})
    deploy, snapshot, smoke, rollback = (parts.get(step) for step in STEPS)
    version = next((p.get("version") for p in (deploy, snapshot, smoke) if p and p.get("version")), "")
    return {
        "model": report.get("model", ""),
        "version": version,
        "deploy": deploy.get("result") if deploy else None,
        "boot": _boot_kind(snapshot, smoke),
        "snapshot": snapshot.get("result") if snapshot else None,
        "cold_start_ttft_seconds": snapshot.get("cold_start_ttft_seconds") if snapshot else None,
        "cold_start_boot_seconds": snapshot.get("cold_start_boot_seconds") if snapshot else None,
        "restored_ttft_seconds": snapshot.get("restored_ttft_seconds") if snapshot else None,
        "restored_boot_seconds": snapshot.get("restored_boot_seconds") if snapshot else None,
        "smoke": None if smoke is None else ("passed" if smoke.get("ok") else "failed"),
        "smoke_checks": _check_counts(smoke),
        "rollback": rollback,
        "ok": _ok(deploy, snapshot, smoke),
    }


def render_json(reports: list[dict[str, Any]]) -> str:
    """The summaries and every part, for machines."""
    models = [{**summarize(r), "parts": r.get("parts", {})} for r in reports]
    return json.dumps({"models": models, "ok": all(m["ok"] for m in models)}, indent=2)


def render_markdown(reports: list[dict[str, Any]]) -> str:
    """A table with one row per model, then what went wrong for each model that failed a step."""
    lines = ["## Deploy report", ""]
    if not reports:
        return "\n".join([*lines, "No post-deploy step has run for these models.", ""])
    lines += [
        "| model | version | boot | cold start (no snapshot) | cold start (snapshot) | smoke | rollback |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    notes: list[str] = []
    for report in reports:
        row = summarize(report)
        parts = report.get("parts", {})
        lines.append(
            "| "
            + " | ".join(
                _cell(value)
                for value in (
                    row["model"],
                    row["version"] or "-",
                    row["boot"] or "-",
                    _timing(row["cold_start_ttft_seconds"], row["cold_start_boot_seconds"]),
                    _restored_cell(row, parts.get("snapshot")),
                    _smoke_cell(row),
                    _rollback_cell(row["rollback"]),
                )
            )
            + " |"
        )
        notes += _problems(row["model"], parts)
    lines.append("")
    if notes:
        lines += ["### Problems", "", *notes, ""]
    return "\n".join(lines)


def _boot_kind(snapshot: dict[str, Any] | None, smoke: dict[str, Any] | None) -> str:
    if smoke and smoke.get("boot"):
        return str(smoke["boot"])
    tries = snapshot.get("tries", []) if snapshot else []
    return str(tries[-1].get("boot", "")) if tries else ""


def _check_counts(smoke: dict[str, Any] | None) -> dict[str, int] | None:
    if not smoke:
        return None
    checks = smoke.get("checks", [])
    return {"passed": sum(1 for c in checks if c.get("ok")), "total": len(checks)}


def _ok(deploy: dict[str, Any] | None, snapshot: dict[str, Any] | None, smoke: dict[str, Any] | None) -> bool:
    if deploy and deploy.get("result") == "failed":
        return False
    if snapshot and not snapshot.get("ok"):
        return False
    return not (smoke and not smoke.get("ok"))


def _timing(ttft: float | None, boot: float | None) -> str:
    if ttft is None:
        return "-"
    return f"{ttft:.1f} s to first token" + (f" (boot {boot:.1f} s)" if boot is not None else "")


def _restored_cell(row: dict[str, Any], snapshot: dict[str, Any] | None) -> str:
    if snapshot is None:
        return "-"
    if not snapshot.get("snapshots_enabled"):
        return "snapshots off"
    if row["restored_ttft_seconds"] is None:
        return f"no restore ({snapshot.get('result')}, {len(snapshot.get('tries', []))} tries)"
    return _timing(row["restored_ttft_seconds"], row["restored_boot_seconds"])


def _smoke_cell(row: dict[str, Any]) -> str:
    counts = row["smoke_checks"]
    if counts is None:
        return "-"
    label = "passed" if row["smoke"] == "passed" else "**failed**"
    return f"{label} {counts['passed']}/{counts['total']}"


def _rollback_cell(rollback: dict[str, Any] | None) -> str:
    if not rollback:
        return "-"
    if rollback.get("result") != "ok":
        return str(rollback.get("result", "?"))
    # A rollback is itself a new version: the detail names the version it restored,
    # ``to_version`` the new version that now serves it.
    live = rollback.get("to_version") or ""
    detail = str(rollback.get("detail") or "")
    restored = detail if detail.startswith("rolled back to ") else "rolled back to the previous version"
    return f"{restored}, live as {live}" if live else restored


def _problems(model: str, parts: dict[str, dict[str, Any]]) -> list[str]:
    notes = []
    deploy, snapshot, smoke, rollback = (parts.get(step) for step in STEPS)
    if deploy and deploy.get("result") == "failed":
        notes.append(f"- **{model}** deploy failed: {_cell(deploy.get('detail', ''))}")
    if snapshot and not snapshot.get("ok"):
        failed = [t for t in snapshot.get("tries", []) if t.get("error")]
        why = failed[-1]["error"] if failed else f"no boot reported `restore` in {snapshot.get('max_tries')} tries"
        notes.append(f"- **{model}** snapshot {snapshot.get('result')}: {_cell(why)}")
    for check in (smoke or {}).get("checks", []):
        if not check.get("ok"):
            notes.append(f"- **{model}** smoke `{check.get('name')}`: {_cell(check.get('detail', ''))}")
    if rollback and rollback.get("detail"):
        notes.append(f"- **{model}** rollback: {_cell(rollback['detail'])}")
    return notes


def _cell(value: object) -> str:
    """Table-safe text: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
