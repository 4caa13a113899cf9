"""The fleet view on Modal reads Modal's own counts and wakes nothing: an hour of collection, 0 container starts, 0 inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_stats import WAKING_RPCS
from tests.support.modal_api_target import REPO, create_workspace, drive, fleet_env

MODEL = "smollm2-135m"
APP = f"fleet-{MODEL}"
ROUNDS_IN_AN_HOUR = 240  # every 15 s


@pytest.fixture
def api() -> Iterator[ModalApiRecorder]:
    with ModalApiRecorder() as recorder:
        create_workspace(recorder)
        yield recorder


def _collect_an_hour(api: ModalApiRecorder, *models: str) -> list[list[dict[str, object]]]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.modal_stats_hour", *models],
        env=fleet_env(api),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rounds: list[list[dict[str, object]]] = json.loads(done.stdout.strip().splitlines()[-1])["rounds"]
    return rounds


def test_an_hour_of_collection_starts_no_container_and_sends_no_input(api: ModalApiRecorder) -> None:
    drive(api, "deploy", "commit-1", MODEL)
    running = [api.start_container(APP), api.start_container(APP)]
    calls_before = len(api.calls)

    rounds = _collect_an_hour(api, MODEL)

    assert len(rounds) == ROUNDS_IN_AN_HOUR
    assert all(one == [{"model": MODEL, "containers": 2, "running_inputs": 0, "backlog": 0}] for one in rounds)
    during = [name for name, _ in api.calls[calls_before:]]
    assert [name for name in during if name in WAKING_RPCS] == []  # 0 inputs, no scaling change
    assert sorted(c.task_id for c in api.containers(APP)) == sorted(running)  # 0 container starts
    assert during.count("FunctionGetCurrentStats") == ROUNDS_IN_AN_HOUR
    assert api.unimplemented == []


def test_a_model_not_deployed_is_left_out_and_an_idle_one_shows_no_container(api: ModalApiRecorder) -> None:
    drive(api, "deploy", "commit-1", MODEL)
    rounds = _collect_an_hour(api, MODEL, "qwen25-vl-7b-instruct")
    assert {item["model"] for one in rounds for item in one} == {MODEL}
    assert rounds[0][0]["containers"] == 0
