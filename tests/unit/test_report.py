"""The deploy report: parts written by separate steps compose one report per model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli.app import app
from modelfleet.postdeploy.report import ReportBook, ReportError, deploy_part, render_json, render_markdown, summarize
from modelfleet.postdeploy.smoke import Check, SmokeReport
from modelfleet.postdeploy.snapshot import SnapshotReport, SnapshotTry
from modelfleet.settings import FleetSettings
from modelfleet.targets.base import DeployOutcome

MODEL = "smollm2-135m"


def smoke_part(*failed: str, boot: str = "restore") -> dict[str, object]:
    names = ["health", "models lists the served name", "streaming works", "no credentials -> 401"]
    checks = [Check(n, n not in failed, f"expected 401, got 200 | {n}" if n in failed else "ok", 0.1) for n in names]
    return {**SmokeReport("https://x.modal.run", MODEL, checks).to_dict(), "boot": boot, "boot_seconds": 3.1}


def snapshot_part(*tries: SnapshotTry, enabled: bool = True, result: str = "restored") -> dict[str, object]:
    return SnapshotReport(enabled, 5, result, list(tries)).to_dict()  # type: ignore[arg-type]


COLD = SnapshotTry(1, "cold", 91.6, 95.25)
RESTORED = SnapshotTry(2, "restore", 2.4, 3.5)


@pytest.fixture
def book(tmp_path: Path) -> ReportBook:
    return ReportBook(tmp_path / "reports")


def deploy(book: ReportBook, version: str = "v7", result: str = "ok") -> None:
    outcome = DeployOutcome(MODEL, f"fleet-{MODEL}", result, 42.0, version=version, detail="")  # type: ignore[arg-type]
    book.add(MODEL, "deploy", deploy_part(outcome, target="modal"))


def test_parts_from_separate_steps_compose_one_report(book: ReportBook) -> None:
    deploy(book)
    book.add(MODEL, "snapshot", snapshot_part(COLD, RESTORED))
    book.add(MODEL, "smoke", smoke_part())
    report = book.read(MODEL)
    assert report is not None and set(report["parts"]) == {"deploy", "snapshot", "smoke"}
    row = summarize(report)
    assert row["version"] == "v7" and row["boot"] == "restore" and row["smoke"] == "passed"
    assert (row["cold_start_ttft_seconds"], row["restored_ttft_seconds"]) == (95.25, 3.5)
    assert row["smoke_checks"] == {"passed": 4, "total": 4} and row["ok"] is True


def test_a_new_deploy_starts_a_new_report(book: ReportBook) -> None:
    deploy(book, "v7")
    book.add(MODEL, "smoke", smoke_part("streaming works"))
    deploy(book, "v8")
    report = book.read(MODEL)
    assert report is not None and set(report["parts"]) == {"deploy"}
    assert summarize(report)["version"] == "v8"


def test_running_a_step_again_replaces_its_part(book: ReportBook) -> None:
    book.add(MODEL, "smoke", smoke_part("streaming works"))
    book.add(MODEL, "smoke", smoke_part())
    report = book.read(MODEL)
    assert report is not None and summarize(report)["smoke"] == "passed"


def test_markdown_is_one_table_row_per_model_with_problems_below(book: ReportBook) -> None:
    deploy(book)
    book.add(MODEL, "snapshot", snapshot_part(COLD, RESTORED))
    book.add(MODEL, "smoke", smoke_part("no credentials -> 401"))
    book.add(MODEL, "rollback", {"result": "ok", "to_version": "v6", "detail": "rolled back to v4"})
    book.add(
        "other", "snapshot", snapshot_part(SnapshotTry(1, "cold", 60.0, 61.0), enabled=False, result="plain-cold-start")
    )
    text = render_markdown(book.all())
    lines = text.splitlines()
    header = lines.index(
        "| model | version | boot | cold start (no snapshot) | cold start (snapshot) | smoke | rollback |"
    )
    assert lines[header + 1] == "| --- | --- | --- | --- | --- | --- | --- |"
    assert lines[header + 2] == "| other | - | cold | 61.0 s to first token (boot 60.0 s) | snapshots off | - | - |"
    assert lines[header + 3] == (
        "| smollm2-135m | v7 | restore | 95.2 s to first token (boot 91.6 s) | 3.5 s to first token (boot 2.4 s) "
        "| **failed** 3/4 | rolled back to v4, live as v6 |"
    )
    # The failed check's detail, pipes escaped so the table and list stay intact.
    assert "- **smollm2-135m** smoke `no credentials -> 401`: expected 401, got 200 \\| no credentials -> 401" in lines


def test_a_snapshot_that_gave_up_says_so_in_the_row_and_the_problems(book: ReportBook) -> None:
    book.add(MODEL, "snapshot", snapshot_part(COLD, SnapshotTry(2, "cold", 90.0, 93.0), result="gave-up"))
    text = render_markdown(book.all())
    assert "| no restore (gave-up, 2 tries) |" in text
    assert "- **smollm2-135m** snapshot gave-up: no boot reported `restore` in 5 tries" in text


def test_json_holds_each_summary_and_every_part(book: ReportBook) -> None:
    deploy(book)
    book.add(MODEL, "smoke", smoke_part("streaming works"))
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
    book.add(MODEL, "smoke", smoke_part())
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
