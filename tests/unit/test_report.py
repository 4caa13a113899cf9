"""The deploy report: parts written by separate steps compose one report per model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli.app import app
from modelfleet.postdeploy.parts import DeployPart, RollbackPart, SmokePart, SnapshotPart, summarize
from modelfleet.postdeploy.report import ReportBook, ReportError, render_json, render_markdown
from modelfleet.postdeploy.smoke import Check, SmokeReport
from modelfleet.postdeploy.snapshot import SnapshotReport, SnapshotTry
from modelfleet.settings import FleetSettings
from modelfleet.targets.base import DeployOutcome

MODEL = "smollm2-135m"


def smoke_part(*failed: str, boot: str = "restore") -> SmokePart:
    names = ["health", "models lists the served name", "streaming works", "no credentials -> 401"]
    checks = tuple(
        Check(name=n, ok=n not in failed, detail=f"expected 401, got 200 | {n}" if n in failed else "ok", seconds=0.1)
        for n in names
    )
    report = SmokeReport(url="https://x.modal.run", served_name=MODEL, checks=checks)
    return SmokePart.of(report, target="modal", boot=boot, boot_seconds=3.1, version="")


def snapshot_part(*tries: SnapshotTry, enabled: bool = True, result: str = "restored") -> SnapshotPart:
    report = SnapshotReport(snapshots_enabled=enabled, max_tries=5, result=result, tries=tries)  # type: ignore[arg-type]
    return SnapshotPart.of(report, target="modal", version="")


def attempt(n: int, boot: str, boot_seconds: float, ttft: float) -> SnapshotTry:
    return SnapshotTry(attempt=n, boot=boot, boot_seconds=boot_seconds, ttft_seconds=ttft)


COLD = attempt(1, "cold", 91.6, 95.25)
RESTORED = attempt(2, "restore", 2.4, 3.5)


@pytest.fixture
def book(tmp_path: Path) -> ReportBook:
    return ReportBook(tmp_path / "reports")


def deploy(book: ReportBook, version: str = "v7", result: str = "ok") -> None:
    outcome = DeployOutcome(MODEL, f"fleet-{MODEL}", result, 42.0, version=version, detail="")  # type: ignore[arg-type]
    book.add(MODEL, DeployPart.of(outcome, target="modal"))


def test_parts_from_separate_steps_compose_one_report(book: ReportBook) -> None:
    deploy(book)
    book.add(MODEL, snapshot_part(COLD, RESTORED))
    book.add(MODEL, smoke_part())
    report = book.read(MODEL)
    assert report is not None and report.parts.rollback is None
    assert (report.parts.deploy, report.parts.snapshot, report.parts.smoke) != (None, None, None)
    row = summarize(report)
    assert row.version == "v7" and row.boot == "restore" and row.smoke == "passed"
    assert (row.cold_start_ttft_seconds, row.restored_ttft_seconds) == (95.25, 3.5)
    assert row.smoke_checks is not None and (row.smoke_checks.passed, row.smoke_checks.total) == (4, 4) and row.ok


def test_a_new_deploy_starts_a_new_report(book: ReportBook) -> None:
    deploy(book, "v7")
    book.add(MODEL, smoke_part("streaming works"))
    deploy(book, "v8")
    report = book.read(MODEL)
    assert report is not None and report.parts.smoke is None and report.parts.deploy is not None
    assert summarize(report).version == "v8"


def test_running_a_step_again_replaces_its_part(book: ReportBook) -> None:
    book.add(MODEL, smoke_part("streaming works"))
    book.add(MODEL, smoke_part())
    report = book.read(MODEL)
    assert report is not None and summarize(report).smoke == "passed"


def test_markdown_is_one_table_row_per_model_with_problems_below(book: ReportBook) -> None:
    deploy(book)
    book.add(MODEL, snapshot_part(COLD, RESTORED))
    book.add(MODEL, smoke_part("no credentials -> 401"))
    book.add(MODEL, RollbackPart(target="modal", result="ok", to_version="v6", detail="rolled back to v4"))
    book.add("other", snapshot_part(attempt(1, "cold", 60.0, 61.0), enabled=False, result="plain-cold-start"))
    text = render_markdown(book.all())
    lines = text.splitlines()
    header = lines.index(
        "| model | version | boot | cold start (no snapshot) | cold start (snapshot) | smoke | quality | rollback |"
    )
    assert lines[header + 1] == "| --- | --- | --- | --- | --- | --- | --- | --- |"
    assert lines[header + 2] == "| other | - | cold | 61.0 s to first token (boot 60.0 s) | snapshots off | - | - | - |"
    assert lines[header + 3] == (
        "| smollm2-135m | v7 | restore | 95.2 s to first token (boot 91.6 s) | 3.5 s to first token (boot 2.4 s) "
        "| **failed** 3/4 | - | rolled back to v4, live as v6 |"
    )
    # The failed check's detail, pipes escaped so the table and list stay intact.
    assert "- **smollm2-135m** smoke `no credentials -> 401`: expected 401, got 200 \\| no credentials -> 401" in lines


def test_a_snapshot_that_gave_up_says_so_in_the_row_and_the_problems(book: ReportBook) -> None:
    book.add(MODEL, snapshot_part(COLD, attempt(2, "cold", 90.0, 93.0), result="gave-up"))
    text = render_markdown(book.all())
    assert "| no restore (gave-up, 2 tries) |" in text
    assert "- **smollm2-135m** snapshot gave-up: no boot reported `restore` in 5 tries" in text


def test_json_holds_each_summary_and_every_part(book: ReportBook) -> None:
    deploy(book)
    book.add(MODEL, smoke_part("streaming works"))
    data = json.loads(render_json(book.all()))
    assert data["ok"] is False
    (model,) = data["models"]
    assert model["model"] == MODEL and model["version"] == "v7" and model["smoke"] == "failed"
    assert model["parts"]["deploy"]["target"] == "modal"
    assert [c["name"] for c in model["parts"]["smoke"]["checks"] if not c["ok"]] == ["streaming works"]


def test_an_empty_report_says_nothing_ran() -> None:
    assert "No post-deploy step has run" in render_markdown([])
    assert json.loads(render_json([])) == {"models": [], "ok": True}


def test_an_unreadable_report_names_the_file(book: ReportBook) -> None:
    book.folder.mkdir(parents=True)
    book.path(MODEL).write_text("{not json")
    with pytest.raises(ReportError, match=rf"{MODEL}\.json: unreadable report"):
        book.read(MODEL)


def test_fleet_report_prints_markdown_or_json_from_the_state_folder(fleet_repo: Path) -> None:
    book = ReportBook(FleetSettings().state_path / "reports")
    deploy(book)
    book.add(MODEL, smoke_part())
    runner = CliRunner()
    markdown = runner.invoke(app, ["report", MODEL, "--markdown"])
    assert markdown.exit_code == 0, markdown.output
    assert "| smollm2-135m | v7 | restore |" in markdown.output
    as_json = runner.invoke(app, ["report", "--json"])
    assert json.loads(as_json.output)["models"][0]["smoke"] == "passed"
    unknown = runner.invoke(app, ["report", "never-deployed"])
    assert "| never-deployed | - | - | - | - | - | - |" in unknown.output
    both = runner.invoke(app, ["report", "--markdown", "--json"])
    assert both.exit_code == 1


# A report file as the version before the typed records wrote it (dicts keyed by strings):
# every key, derived values (ok, cold-start seconds) included. CI may keep such files.
EARLIER_VERSION_FILE = {
    "model": MODEL,
    "updated": "2026-11-30T10:00:05+00:00",
    "parts": {
        "deploy": {
            "target": "modal",
            "app": f"fleet-{MODEL}",
            "result": "ok",
            "version": "v7",
            "seconds": 42.0,
            "url": "https://x.modal.run",
            "detail": "",
            "at": "2026-11-30T10:00:00+00:00",
        },
        "snapshot": {
            "target": "modal",
            "snapshots_enabled": True,
            "max_tries": 5,
            "result": "restored",
            "ok": True,
            "cold_start_ttft_seconds": 95.25,
            "cold_start_boot_seconds": 91.6,
            "restored_ttft_seconds": 3.5,
            "restored_boot_seconds": 2.4,
            "tries": [
                {"attempt": 1, "boot": "cold", "boot_seconds": 91.6, "ttft_seconds": 95.25, "error": ""},
                {"attempt": 2, "boot": "restore", "boot_seconds": 2.4, "ttft_seconds": 3.5, "error": ""},
            ],
            "version": "v7",
            "at": "2026-11-30T10:00:01+00:00",
        },
        "smoke": {
            "target": "modal",
            "url": "https://x.modal.run",
            "served_name": MODEL,
            "ok": False,
            "checks": [
                {"name": "health", "ok": True, "detail": "200", "seconds": 0.1},
                {"name": "streaming works", "ok": False, "detail": "expected several chunks", "seconds": 0.2},
            ],
            "boot": "restore",
            "boot_seconds": 3.1,
            "version": "v7",
            "at": "2026-11-30T10:00:02+00:00",
        },
        "rollback": {
            "target": "modal",
            "result": "ok",
            "to_version": "v8",
            "seconds": 12.5,
            "detail": "rolled back to v6",
            "at": "2026-11-30T10:00:05+00:00",
        },
    },
}


def test_a_report_file_of_the_earlier_version_loads_and_renders(book: ReportBook) -> None:
    book.folder.mkdir(parents=True)
    book.path(MODEL).write_text(json.dumps(EARLIER_VERSION_FILE))
    report = book.read(MODEL)
    assert report is not None
    assert report.parts.smoke is not None and [c.name for c in report.parts.smoke.failures] == ["streaming works"]
    assert "| smollm2-135m | v7 | restore | 95.2 s to first token (boot 91.6 s) |" in render_markdown([report])
    assert "| **failed** 1/2 | - | rolled back to v6, live as v8 |" in render_markdown([report])
    # Written back, the file is the very document the earlier version wrote.
    assert json.loads(report.model_dump_json()) == EARLIER_VERSION_FILE


def test_the_written_file_keeps_the_shape_ci_reads(book: ReportBook) -> None:
    deploy(book)
    book.add(MODEL, snapshot_part(COLD, RESTORED))
    book.add(MODEL, smoke_part("streaming works"))
    book.add(
        MODEL, RollbackPart(target="modal", result="ok", to_version="v8", seconds=12.5, detail="rolled back to v6")
    )
    written = json.loads(book.path(MODEL).read_text())
    assert set(written) == {"model", "updated", "parts"}
    for step, part in written["parts"].items():
        assert set(part) == set(EARLIER_VERSION_FILE["parts"][step]), step  # type: ignore[index]
    assert set(written["parts"]["snapshot"]["tries"][0]) == {"attempt", "boot", "boot_seconds", "ttft_seconds", "error"}
    # A step that has not run is absent, not null.
    book.add(MODEL, DeployPart(target="modal", app="a", result="ok", seconds=1.0))
    assert set(json.loads(book.path(MODEL).read_text())["parts"]) == {"deploy"}


def test_fleet_report_json_keeps_its_keys(book: ReportBook) -> None:
    deploy(book)
    book.add(MODEL, smoke_part())
    (model,) = json.loads(render_json(book.all()))["models"]
    assert set(model) == {
        "model", "version", "deploy", "boot", "snapshot", "cold_start_ttft_seconds", "cold_start_boot_seconds",
        "restored_ttft_seconds", "restored_boot_seconds", "smoke", "smoke_checks", "quality_checks", "rollback", "ok",
        "parts",
    }  # fmt: skip
    assert model["smoke_checks"] == {"passed": 4, "total": 4} and model["rollback"] is None


def test_a_report_of_another_shape_names_the_file_and_the_field(book: ReportBook) -> None:
    book.folder.mkdir(parents=True)
    damaged = json.loads(json.dumps(EARLIER_VERSION_FILE))
    damaged["parts"]["smoke"]["checks"][1]["ok"] = "maybe"
    book.path(MODEL).write_text(json.dumps(damaged))
    with pytest.raises(
        ReportError, match=rf"{MODEL}\.json: parts\.smoke\.checks\.1\.ok: Input should be a valid boolean"
    ):
        book.read(MODEL)
    damaged = json.loads(json.dumps(EARLIER_VERSION_FILE))
    damaged["parts"]["rollback"]["restored"] = "v6"
    book.path(MODEL).write_text(json.dumps(damaged))
    with pytest.raises(ReportError, match=r"parts\.rollback\.restored: Extra inputs are not permitted .* delete it"):
        book.read(MODEL)
