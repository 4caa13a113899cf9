"""``fleet report --since``: the deploy report with a PNG per model drawn over the window and linked."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from typer.testing import CliRunner

from modelfleet.cli.app import app
from modelfleet.observe.history import history_path, record_frame
from modelfleet.settings import FleetSettings
from tests.unit.test_fleet_plots import _view

runner = CliRunner()


def test_report_since_draws_each_models_picture_and_links_it(
    write_model: Callable[[str], Path], tmp_path: Path
) -> None:
    write_model("alpha")
    history = history_path(FleetSettings().state_path)
    now = time.time()
    record_frame(history, [_view("alpha", 1.0)], at=now - 60)
    record_frame(history, [_view("alpha", 3.0)], at=now - 30)
    out = tmp_path / "pictures"

    done = runner.invoke(app, ["report", "alpha", "--since", "1h", "--out", str(out)])

    assert done.exit_code == 0, done.output
    assert [p.name for p in out.iterdir()] == ["alpha.png"]
    assert "### Pictures" in done.output
    assert f"- **alpha**: [alpha.png]({quote((out / 'alpha.png').as_posix())})" in done.output


def test_report_since_without_figures_still_prints_the_report_and_says_why(
    write_model: Callable[[str], Path], tmp_path: Path
) -> None:
    write_model("alpha")

    done = runner.invoke(app, ["report", "alpha", "--since", "1h", "--out", str(tmp_path / "none")])

    assert done.exit_code == 0, done.output
    assert "note: no pictures: " in done.output and "no frames since 1h" in done.output
    assert "alpha" in done.output  # the report itself


def test_report_since_refuses_a_bad_window_and_json(write_model: Callable[[str], Path], tmp_path: Path) -> None:
    write_model("alpha")
    bad = runner.invoke(app, ["report", "alpha", "--since", "soon", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "'soon' is not a duration" in bad.output
    as_json = runner.invoke(app, ["report", "--json", "--since", "1h"])
    assert as_json.exit_code == 1 and "drop --json" in as_json.output
    both = runner.invoke(app, ["report", "--since", "1h", "--plots", str(tmp_path)])
    assert both.exit_code == 1 and "drop --plots" in both.output
