"""``fleet plots`` on Modal without recorded frames (real ``fleet`` CLI and modal client, loopback API).

Nothing watched the fleet: the pictures come from what Modal kept -- one-minute metrics
(containers, calls), time-range stats per step (latency percentiles) and the hourly bill --
over a window the test lays out in the recorder's past (containers started and stopped at
given times, inputs finished at given times). Reading it all starts no container and sends
no input (counted as tests/contract/test_modal_observe.py counts). A window longer than
Modal answers is refused in one line, before any call.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelfleet.observe.history import history_path, record_frame
from modelfleet.observe.modal_history import MIN_STEP_S
from modelfleet.observe.view import ModelView
from modelfleet.settings import FleetSettings
from tests.contract.test_modal_serving_primitive import _as_server, _fleet_root
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_stats import WAKING_RPCS
from tests.support.modal_api_target import REPO, create_workspace, drive, fleet_env, run_fleet
from tests.support.modal_api_usage import InferenceFigures

SMALL = "smollm2-135m"
LARGE = "llama31-8b-instruct"
HOUR = 3600.0
MINUTE = 60.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STATS_RPCS = ("FunctionGetTimeRangeStats", "FunctionGetMetrics", "ServerGetTimeRangeStats", "ServerGetMetrics")


@pytest.fixture
def api() -> Iterator[ModalApiRecorder]:
    with ModalApiRecorder() as recorder:
        create_workspace(recorder)
        yield recorder


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """An empty state folder: no frame was ever recorded."""
    return tmp_path / "state"


def _a_simulated_window(
    api: ModalApiRecorder, now: float, large: bool = True
) -> dict[str, list[tuple[float, float | None]]]:
    """The last two hours: SMALL scaled up, down to zero and up again; LARGE (when deployed) held one container."""
    spans: dict[str, list[tuple[float, float | None]]] = {
        SMALL: [(now - 100 * MINUTE, now - 40 * MINUTE), (now - 20 * MINUTE, None)],
        **({LARGE: [(now - 3 * HOUR, None)]} if large else {}),
    }
    for model, model_spans in spans.items():
        for started, finished in model_spans:
            api.start_container_at(f"fleet-{model}", started, finished or 0.0)
    api.record_inputs(f"fleet-{SMALL}", 30, now - 50 * MINUTE, execution_s=0.9)
    api.record_inputs(f"fleet-{SMALL}", 5, now - 10 * MINUTE, execution_s=2.0)
    return spans


def _plot_frames(api: ModalApiRecorder, state: Path, since: str, *models: str, root: Path = REPO) -> dict[str, Any]:
    """What ``fleet plots`` draws (observe.history.plot_frames), read in a fresh interpreter pointed at the recorder."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.modal_plot_frames", since, *models],
        env=fleet_env(api, root, FLEET_STATE_DIR=str(state)),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _rows(frames: list[dict[str, Any]], model: str, key: str) -> list[tuple[float, Any]]:
    return [(f["at"], row[key]) for f in frames for row in f["models"] if row["model"] == model and key in row]


def _seconds_in(spans: list[tuple[float, float | None]], since: float, until: float, now: float) -> float:
    return sum(max(0.0, min(end or now, until) - max(start, since)) for start, end in spans)


def test_plots_on_modal_draw_each_deployed_model_from_modals_figures_and_wake_nothing(
    api: ModalApiRecorder, state: Path, tmp_path: Path
) -> None:
    drive(api, "deploy", "commit-1", SMALL, LARGE)
    now = time.time()
    spans = _a_simulated_window(api, now)
    containers_before = {m: sorted(c.task_id for c in api.containers(f"fleet-{m}")) for m in (SMALL, LARGE)}
    calls_before = len(api.calls)

    done = run_fleet(api, "plots", "--since", "2h", "--out", str(tmp_path / "plots"), FLEET_STATE_DIR=str(state))

    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert written == [f"{LARGE}.png", f"{SMALL}.png"]
    assert all((tmp_path / "plots" / name).read_bytes().startswith(PNG_MAGIC) for name in written)
    during = [name for name, _ in api.calls[calls_before:]]
    assert [name for name in during if name in WAKING_RPCS] == []  # 0 inputs, no scaling change
    for model, before in containers_before.items():  # 0 container starts
        assert sorted(c.task_id for c in api.containers(f"fleet-{model}")) == before
    # 120 one-minute buckets fit one export per model; 24 five-minute steps of stats per model; one bill.
    assert during.count("FunctionGetMetrics") == 2
    assert during.count("FunctionGetTimeRangeStats") == 2 * (2 * HOUR // MIN_STEP_S)
    assert during.count("WorkspaceBillingReport") == 1
    assert api.unimplemented == []
    assert not history_path(state).exists()  # drawing records nothing

    frames = _plot_frames(api, state, "2h")["frames"]
    containers = _rows(frames, SMALL, "containers")
    assert len(containers) >= 119  # one row per observed minute
    assert {value for at, value in containers if now - 95 * MINUTE < at < now - 45 * MINUTE} == {1.0}
    assert {value for at, value in containers if now - 35 * MINUTE < at < now - 25 * MINUTE} == {0.0}
    assert {value for _, value in _rows(frames, LARGE, "containers")} == {1.0}
    calls = [
        row["calls_per_minute"]
        for f in frames
        for row in f["models"]
        if row["model"] == SMALL and "calls_per_minute" in row
    ]
    assert sum(c.get("successful_calls_count", 0.0) for c in calls) == 35.0
    latency = _rows(frames, SMALL, "latency_p50")
    assert {value for at, value in latency if abs(at - (now - 50 * MINUTE)) < MIN_STEP_S / 2} == {0.9}
    assert {value for at, value in latency if abs(at - (now - 10 * MINUTE)) < MIN_STEP_S / 2} == {2.0}
    l4 = FleetSettings(root=REPO).prices.per_hour["L4"]
    per_hour = _rows(frames, SMALL, "containers_dollars_per_hour")
    held = [value for at, value in per_hour if now - 95 * MINUTE < at < now - 45 * MINUTE]
    assert held and all(value == pytest.approx(l4) for value in held)

    costs = [cost for f in frames for cost in f.get("costs", []) if cost["model"] == SMALL]
    assert costs and all(c["until"] - c["since"] == HOUR and c["until"] <= now for c in costs)
    for cost in costs:
        seconds = _seconds_in(spans[SMALL], cost["since"], cost["until"], now)
        assert cost["gpu_seconds"] == pytest.approx(seconds)
        assert cost["price_table_dollars"] == pytest.approx(seconds / HOUR * l4)
        assert cost["billed_dollars"] is not None and (cost["billed_dollars"] > 0) == (seconds > 0)


def test_refused_billing_still_draws_on_the_price_table_and_says_why_once(
    api: ModalApiRecorder, state: Path, tmp_path: Path
) -> None:
    drive(api, "deploy", "commit-1", SMALL)
    _a_simulated_window(api, time.time(), large=False)
    api.refuse_billing()

    done = run_fleet(api, "plots", SMALL, "--since", "2h", "--out", str(tmp_path / "plots"), FLEET_STATE_DIR=str(state))

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "plots" / f"{SMALL}.png").read_bytes().startswith(PNG_MAGIC)
    (note,) = [line for line in done.stderr.splitlines() if line.startswith("note: ")]
    assert "refused" in note and "PermissionDeniedError" in note and "price table" in note
    result = _plot_frames(api, state, "2h", SMALL)
    costs = [cost for f in result["frames"] for cost in f.get("costs", [])]
    assert costs and all(c["billed_dollars"] is None and c["price_table_dollars"] is not None for c in costs)


def test_a_window_longer_than_modal_answers_is_refused_in_one_line_before_any_call(
    api: ModalApiRecorder, state: Path, tmp_path: Path
) -> None:
    drive(api, "deploy", "commit-1", SMALL)
    calls_before = len(api.calls)

    done = run_fleet(api, "plots", "--since", "8d", "--out", str(tmp_path / "plots"), FLEET_STATE_DIR=str(state))

    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "--since 8d" in line and "7 days" in line and "--since 7d or less" in line
    assert not any(name in STATS_RPCS for name, _ in api.calls[calls_before:])
    assert not (tmp_path / "plots").exists()


def test_a_model_filter_draws_that_model_alone_and_an_unknown_name_is_refused(
    api: ModalApiRecorder, state: Path, tmp_path: Path
) -> None:
    drive(api, "deploy", "commit-1", SMALL, LARGE)
    _a_simulated_window(api, time.time())

    done = run_fleet(api, "plots", LARGE, "--since", "30m", "--out", str(tmp_path / "one"), FLEET_STATE_DIR=str(state))
    assert done.returncode == 0, done.stderr
    assert [p.name for p in (tmp_path / "one").iterdir()] == [f"{LARGE}.png"]

    unknown = run_fleet(api, "plots", "no-such-model", "--out", str(tmp_path / "none"), FLEET_STATE_DIR=str(state))
    assert unknown.returncode == 1 and "no-such-model" in unknown.stderr and SMALL in unknown.stderr


def test_a_model_not_deployed_leaves_a_note_and_nothing_deployed_is_refused_with_the_reason(
    api: ModalApiRecorder, state: Path, tmp_path: Path
) -> None:
    drive(api, "deploy", "commit-1", SMALL)

    done = run_fleet(api, "plots", "--since", "1h", "--out", str(tmp_path / "plots"), FLEET_STATE_DIR=str(state))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [f"{SMALL}.png"]  # an idle model: zeros drawn
    assert f"note: {LARGE}: not deployed in Modal environment main" in done.stderr

    refused = run_fleet(api, "plots", LARGE, "--since", "1h", "--out", str(tmp_path / "x"), FLEET_STATE_DIR=str(state))
    assert refused.returncode == 1
    assert "nothing to draw since 1h" in refused.stderr and not (tmp_path / "x").exists()


def test_recorded_frames_are_drawn_beside_modals_figures(api: ModalApiRecorder, state: Path) -> None:
    drive(api, "deploy", "commit-1", SMALL)
    now = time.time()
    _a_simulated_window(api, now, large=False)
    view = ModelView(
        model=SMALL, replicas_running=1, replicas_starting=0, requests_running=3.0, requests_waiting=1.0,
        requests_done=0.0, ttft_p50=None, ttft_p95=None, tpot_p50=None, tpot_p95=None, tokens_in_per_s=None,
        tokens_out_per_s=None, tokens_in=0.0, tokens_out=0.0, kv_cache_use=None, dollars_per_hour=0.8,
        dollars_per_million_out=None,
    )  # fmt: skip
    record_frame(history_path(state), [view], at=now - 5 * MINUTE)
    record_frame(history_path(state), [view], at=now - 3 * HOUR)  # before the window: left out

    frames = _plot_frames(api, state, "2h")["frames"]

    assert _rows(frames, SMALL, "requests_running") == [(pytest.approx(now - 5 * MINUTE), 3.0)]
    assert len(_rows(frames, SMALL, "containers")) >= 119
    times = [f["at"] for f in frames if f["models"]]
    assert times == sorted(times)


def test_a_modal_servers_engine_figures_are_drawn_per_step(api: ModalApiRecorder, state: Path, tmp_path: Path) -> None:
    root = _fleet_root(tmp_path, models=[SMALL])
    toml = root / "models" / SMALL / "model.toml"
    toml.write_text(_as_server(toml.read_text()))
    create_workspace(api, root)
    drive(api, "deploy", "commit-1", SMALL, root=root)
    now = time.time()
    api.start_container_at(f"fleet-{SMALL}", now - HOUR)
    api.record_inputs(f"fleet-{SMALL}", 12, now - 20 * MINUTE, execution_s=1.2)
    api.declare_inference(
        f"fleet-{SMALL}",
        InferenceFigures(ttft_s=(0.05, 0.08), inter_token_s=(0.01,), input_tokens_per_second=500.0,
                         output_tokens_per_second=120.0),
    )  # fmt: skip
    calls_before = len(api.calls)

    done = run_fleet(
        api, "plots", "--since", "1h", "--out", str(tmp_path / "plots"), root=root, FLEET_STATE_DIR=str(state)
    )

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "plots" / f"{SMALL}.png").read_bytes().startswith(PNG_MAGIC)
    during = [name for name, _ in api.calls[calls_before:]]
    assert during.count("ServerGetMetrics") == 1 and during.count("ServerGetTimeRangeStats") == HOUR // MIN_STEP_S
    assert [name for name in during if name in WAKING_RPCS] == []
    frames = _plot_frames(api, state, "1h", root=root)["frames"]
    assert {value for _, value in _rows(frames, SMALL, "ttft_p95")} == {0.08}
    assert {value for _, value in _rows(frames, SMALL, "tokens_out_per_s")} == {120.0}
    calls = [row["calls_per_minute"] for f in frames for row in f["models"] if "calls_per_minute" in row]
    assert sum(c.get("successful_requests_count", 0.0) for c in calls) == 12.0
    assert not math.isnan(sum(value for _, value in _rows(frames, SMALL, "containers")))


def test_a_window_over_500_minutes_is_read_in_pieces_modal_accepts(api: ModalApiRecorder, state: Path) -> None:
    drive(api, "deploy", "commit-1", SMALL)
    now = time.time()
    api.start_container_at(f"fleet-{SMALL}", now - 9 * HOUR, now - 8 * HOUR)
    calls_before = len(api.calls)

    frames = _plot_frames(api, state, "10h", SMALL)["frames"]

    during = [name for name, _ in api.calls[calls_before:]]
    # 600 one-minute buckets: two exports (Modal answers at most 500 points per series), each accepted.
    assert during.count("FunctionGetMetrics") == 2
    containers = _rows(frames, SMALL, "containers")
    assert len(containers) >= 599
    assert sum(value for _, value in containers) == pytest.approx(60.0)  # the container's hour, minute by minute
    costs = [cost for f in frames for cost in f.get("costs", [])]
    assert sum(c["gpu_seconds"] for c in costs) == pytest.approx(HOUR)
