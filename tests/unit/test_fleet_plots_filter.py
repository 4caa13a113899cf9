"""``fleet plots MODEL`` on the local target: the recorded frames of that model alone; an unknown name is refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from modelfleet.cli.app import app
from modelfleet.observe.history import history_path, record_frame
from modelfleet.settings import FleetSettings
from tests.unit.test_fleet_plots import _view

runner = CliRunner()


def test_a_model_filter_draws_only_that_models_recorded_frames(
    write_model: Callable[[str], Path], tmp_path: Path
) -> None:
    write_model("alpha")
    write_model("beta")
    history = history_path(FleetSettings().state_path)
    now = time.time()
    record_frame(history, [_view("alpha", 1.0), _view("beta", 2.0)], at=now - 60)
    record_frame(history, [_view("alpha", 3.0), _view("beta", 4.0)], at=now - 30)

    done = runner.invoke(app, ["plots", "beta", "--since", "1h", "--out", str(tmp_path / "out")])

    assert done.exit_code == 0, done.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["beta.png"]


def test_a_model_without_frames_or_unknown_is_refused_in_one_line(
    write_model: Callable[[str], Path], tmp_path: Path
) -> None:
    write_model("alpha")
    write_model("beta")
    record_frame(history_path(FleetSettings().state_path), [_view("alpha", 1.0)], at=time.time() - 30)

    without = runner.invoke(app, ["plots", "beta", "--since", "1h", "--out", str(tmp_path / "none")])
    assert without.exit_code == 1 and "no frames since 1h" in without.output and "for beta" in without.output

    unknown = runner.invoke(app, ["plots", "gamma", "--out", str(tmp_path / "none")])
    assert unknown.exit_code == 1 and "gamma" in unknown.output and "alpha" in unknown.output
    assert not (tmp_path / "none").exists()
