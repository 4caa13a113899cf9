"""The JSON commands' long-lived CLI processes answer as ``python -m modal`` does, and never hang.

Why: ``modal app history --json`` after every deploy (and the other ``--json`` commands)
now runs in a reused ``cli_worker`` process instead of a new interpreter each time; the
output, the failure line and the timeout must be those of the CLI run alone, and a worker
that dies or hangs must cost one command at most.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from modelfleet.targets.modal.cli_pool import CliPool
from modelfleet.targets.modal.client import ModalResult
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_latency import NO_LATENCY, LatencyProfile
from tests.support.modal_api_target import REPO, create_workspace, drive, fleet_env

HISTORY = ("app", "history", "fleet-smollm2-135m", "--env", "main", "--json")


@pytest.fixture(scope="module")
def deployed() -> Iterator[ModalApiRecorder]:
    """A recorder with the demo model deployed twice."""
    with ModalApiRecorder() as recorder:
        create_workspace(recorder)
        drive(recorder, "deploy", "t1", "smollm2-135m")
        drive(recorder, "deploy", "t2", "smollm2-135m")
        yield recorder


@pytest.fixture
def api(deployed: ModalApiRecorder, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModalApiRecorder]:
    """The recorder, with this process's MODAL_* pointing at it (workers inherit them); no latency."""
    for key, value in deployed.env().items():
        monkeypatch.setenv(key, value)
    yield deployed
    deployed.latency = NO_LATENCY


@pytest.fixture
def pool() -> Iterator[CliPool]:
    workers = CliPool(size=1)
    yield workers
    workers.close()


def _cli(api: ModalApiRecorder, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modal", *args], env={**fleet_env(api), "COLUMNS": "400", "NO_COLOR": "1"},
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_history_from_the_worker_is_the_clis_own_json(api: ModalApiRecorder, pool: CliPool) -> None:
    reply = pool.run(HISTORY, timeout=60)

    assert reply is not None and reply["rc"] == 0
    rows = json.loads(reply["stdout"])
    assert [(r["version"], r["tag"]) for r in rows] == [("v2", "t2"), ("v1", "t1")]
    assert rows == json.loads(_cli(api, *HISTORY).stdout)
    again = pool.run(HISTORY, timeout=60)  # the same process answers again
    assert again is not None and json.loads(again["stdout"]) == rows


def test_a_failing_command_gives_the_clis_error_line(api: ModalApiRecorder, pool: CliPool) -> None:
    args = ("app", "history", "no-such-app", "--env", "main", "--json")
    reply = pool.run(args, timeout=60)

    assert reply is not None and reply["rc"] == 1
    result = ModalResult(args, reply["rc"], reply["stdout"], reply["stderr"])
    assert result.reason() == "Error: No App with name 'no-such-app' found in the 'main' environment."
    cli = _cli(api, *args)
    assert cli.returncode == 1 and result.reason() in cli.stderr


def test_a_dead_worker_costs_its_command_and_the_next_one_gets_a_new_worker(
    api: ModalApiRecorder, pool: CliPool
) -> None:
    first = pool.run(HISTORY, timeout=60)
    assert first is not None
    (worker,) = pool._all
    worker.process.kill()
    worker.process.wait()

    from modelfleet.targets.modal.cli_pool import WorkerGone

    with pytest.raises(WorkerGone):
        pool.run(HISTORY, timeout=60)
    reply = pool.run(HISTORY, timeout=60)
    assert reply is not None and reply["stdout"] == first["stdout"]


def test_a_command_the_api_never_answers_times_out_and_the_worker_is_replaced(
    api: ModalApiRecorder, pool: CliPool
) -> None:
    assert pool.run(HISTORY, timeout=60) is not None
    (worker,) = pool._all
    api.latency = LatencyProfile(per_rpc={"AppDeploymentHistory": 600.0})

    assert pool.run(HISTORY, timeout=1.0) is None

    assert worker.process.poll() is not None  # killed, not left waiting
    assert pool._all == []
