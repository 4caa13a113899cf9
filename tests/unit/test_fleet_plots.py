"""``fleet plots``: a PNG per model from the frames ``fleet top`` recorded; clear errors without frames or with a bad --since."""

from __future__ import annotations

import time
from pathlib import Path

from typer.testing import CliRunner

from modelfleet.cli.app import app
from modelfleet.observe.history import frames_since, history_path, record_frame
from modelfleet.observe.view import ModelView
from modelfleet.settings import FleetSettings

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _view(model: str, running: float) -> ModelView:
    return ModelView(
        model=model,
        replicas_running=1,
        replicas_starting=0,
        requests_running=running,
        requests_waiting=0.0,
        requests_done=10.0,
        ttft_p50=0.1,
        ttft_p95=0.3,
        tpot_p50=0.02,
        tpot_p95=None,
        tokens_in_per_s=50.0,
        tokens_out_per_s=20.0,
        tokens_in=500.0,
        tokens_out=200.0,
        kv_cache_use=0.1,
        dollars_per_hour=3.95,
        dollars_per_million_out=54.9,
    )


def test_plots_write_one_png_per_model_from_recent_frames_only(fleet_repo: Path, tmp_path: Path) -> None:
    history = history_path(FleetSettings().state_path)
    now = time.time()
    record_frame(history, [_view("alpha", 9.0)], at=now - 7200)  # older than --since: left out
    record_frame(history, [_view("alpha", 1.0), _view("beta", 2.0)], at=now - 60)
    record_frame(history, [_view("alpha", 3.0), _view("beta", 4.0)], at=now - 30)
    assert len(frames_since(history, now - 3600)) == 2

    done = runner.invoke(app, ["plots", "--since", "1h", "--out", str(tmp_path / "out")])

    assert done.exit_code == 0, done.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["alpha.png", "beta.png"]
    assert (tmp_path / "out" / "alpha.png").read_bytes().startswith(PNG_MAGIC)


def test_plots_without_frames_say_how_to_record_them(fleet_repo: Path, tmp_path: Path) -> None:
    done = runner.invoke(app, ["plots", "--since", "1h", "--out", str(tmp_path)])
    assert done.exit_code == 1 and "run `fleet top`" in done.output


def test_a_since_without_a_unit_is_refused_with_the_forms_it_takes(fleet_repo: Path) -> None:
    done = runner.invoke(app, ["plots", "--since", "90"])
    assert done.exit_code == 1 and "30m, 6h, 2d" in done.output
