"""``fleet report --markdown --plots DIR``: each model's section of pictures links its ``fleet plots`` PNG.

Locally the links are relative to the folder as given (the report is read beside it); in CI
(``--plots-url``) the summary links the uploaded artifact once and names the PNGs in it; a
model without a PNG is said to have none, and the report still prints.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli.app import app
from modelfleet.postdeploy.report import ReportBook
from modelfleet.settings import FleetSettings
from tests.unit.test_report import MODEL, deploy, smoke_part

OTHER = "llama31-8b-instruct"
runner = CliRunner()


@pytest.fixture
def reported(fleet_repo: Path) -> Path:
    """Deploy reports: MODEL deployed and smoke-tested, OTHER smoke-tested."""
    book = ReportBook(FleetSettings().state_path / "reports")
    deploy(book)
    for name in (MODEL, OTHER):
        book.add(name, smoke_part())
    return fleet_repo


def _plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *models: str) -> Path:
    monkeypatch.chdir(tmp_path)
    folder = Path("fleet plots")  # a space: the link must still work
    folder.mkdir()
    for model in models:
        (folder / f"{model}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder


def test_a_local_report_links_each_models_png_relatively_and_says_which_has_none(
    reported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _plots(tmp_path, monkeypatch, MODEL)

    done = runner.invoke(app, ["report", MODEL, OTHER, "--markdown", "--plots", str(folder)])

    assert done.exit_code == 0, done.output
    report, pictures = done.output.split("### Pictures")
    assert f"| {MODEL} |" in report
    assert f"- **{MODEL}**: [{MODEL}.png](fleet%20plots/{MODEL}.png)" in pictures
    assert f"- **{OTHER}**: no picture: `fleet plots` drew none into `fleet plots`" in pictures


def test_a_ci_summary_links_the_artifact_once_and_names_the_pngs(
    reported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _plots(tmp_path, monkeypatch, MODEL, OTHER)
    url = "https://github.com/o/r/actions/runs/1/artifacts/2"

    done = runner.invoke(app, ["report", MODEL, OTHER, "--plots", str(folder), "--plots-url", url])

    assert done.exit_code == 0, done.output
    pictures = done.output.split("### Pictures")[1]
    assert pictures.count(f"]({url})") == 1
    assert f"- **{MODEL}**: `{MODEL}.png`" in pictures and f"- **{OTHER}**: `{OTHER}.png`" in pictures
    assert "fleet%20plots/" not in pictures  # a runner's path means nothing in a job summary


def test_an_upload_that_gave_no_url_is_said_and_nothing_drawn_does_not_fail_the_report(
    reported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _plots(tmp_path, monkeypatch, MODEL)
    no_url = runner.invoke(app, ["report", MODEL, "--plots", str(folder), "--plots-url", ""])
    assert no_url.exit_code == 0 and "drawn but not uploaded" in no_url.output

    empty = runner.invoke(app, ["report", OTHER, "--plots", "never-drawn", "--plots-url", ""])
    assert empty.exit_code == 0, empty.output
    assert f"- **{OTHER}**: no picture" in empty.output and "Download" not in empty.output


def test_plots_options_are_refused_with_json_or_without_a_folder(reported: Path) -> None:
    with_json = runner.invoke(app, ["report", "--json", "--plots", "x"])
    assert with_json.exit_code == 1 and "drop --json" in with_json.output
    url_alone = runner.invoke(app, ["report", "--plots-url", "https://example.invalid"])
    assert url_alone.exit_code == 1 and "--plots DIR" in url_alone.output
