"""The fleet view on Modal reads Modal's own counts and wakes nothing: an hour of collection, 0 container starts, 0 inputs.

The hour is the fleet's own loop over ``ModalWatch`` (what ``fleet top`` and ``fleet metrics``
run on Modal) on a fake clock: every 15 s Modal's current stats, every 60 s the last hour's
time-range stats, metrics and app stats, once per billed hour Modal's billing. The
recorder counts each RPC; none of them may carry an input or change scaling.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_stats import WAKING_RPCS
from tests.support.modal_api_target import REPO, create_workspace, drive, fleet_env

MODEL = "smollm2-135m"
APP = f"fleet-{MODEL}"
ROUNDS_IN_AN_HOUR = 240  # every 15 s
FIGURE_READS_IN_AN_HOUR = 60  # every 60 s (modal_watch.FIGURES_REFRESH_S)
HOUR = 3600.0


@pytest.fixture
def api() -> Iterator[ModalApiRecorder]:
    with ModalApiRecorder() as recorder:
        create_workspace(recorder)
        yield recorder


def _past_half_hour() -> float:
    """A fake start two and a half hours ago, 30 minutes past an hour: the collected hour spans two billed hours,
    all of it in the recorder's past (its clock is the real one)."""
    return math.floor(time.time() / HOUR) * HOUR - 3 * HOUR + HOUR / 2


def _collect_an_hour(api: ModalApiRecorder, start: float, *models: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.modal_stats_hour", repr(start), *models],
        env=fleet_env(api),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_an_hour_of_collection_starts_no_container_and_sends_no_input(api: ModalApiRecorder) -> None:
    drive(api, "deploy", "commit-1", MODEL)
    start = _past_half_hour()
    running = [api.start_container_at(APP, start - 2 * HOUR), api.start_container_at(APP, start - 2 * HOUR)]
    calls_before = len(api.calls)

    hour = _collect_an_hour(api, start, MODEL)

    rounds = hour["rounds"]
    assert len(rounds) == ROUNDS_IN_AN_HOUR
    assert all(one == [{"model": MODEL, "containers": 2, "running_inputs": 0, "backlog": 0}] for one in rounds)
    during = [name for name, _ in api.calls[calls_before:]]
    assert [name for name in during if name in WAKING_RPCS] == []  # 0 inputs, no scaling change
    assert sorted(c.task_id for c in api.containers(APP)) == sorted(running)  # 0 container starts
    assert during.count("FunctionGetCurrentStats") == ROUNDS_IN_AN_HOUR
    for figures_rpc in ("FunctionGetTimeRangeStats", "FunctionGetMetrics", "AppGetTimeRangeStats"):
        assert during.count(figures_rpc) == FIGURE_READS_IN_AN_HOUR, figures_rpc
    # The hour started half past: two billed hours, each read once.
    assert during.count("WorkspaceBillingReport") == 2
    assert during.count("EnvironmentBillingSummary") == 2
    assert api.unimplemented == []
    # The last billed hour had both containers throughout: 2 x 3600 GPU-seconds on one L4 each.
    (cost,) = hour["costs"]
    assert cost["gpu_seconds"] == pytest.approx(2 * HOUR)
    assert cost["billed_dollars"] > 0


def test_a_model_not_deployed_is_left_out_and_an_idle_one_shows_no_container(api: ModalApiRecorder) -> None:
    drive(api, "deploy", "commit-1", MODEL)
    hour = _collect_an_hour(api, _past_half_hour(), MODEL, "qwen25-vl-7b-instruct")
    rounds = hour["rounds"]
    assert {item["model"] for one in rounds for item in one} == {MODEL}
    assert rounds[0][0]["containers"] == 0
    (cost,) = hour["costs"]
    assert (cost["model"], cost["gpu_seconds"], cost["billed_dollars"]) == (MODEL, 0.0, 0.0)
