"""``fleet smoke`` and ``fleet report`` as CI runs them, fast: the local target pointed at a scripted endpoint.

The local target finds a model's URL in its run record; here the record names the
``FakeEndpoint`` (and this test process as the live supervisor), so the real CLI,
target and report code run without starting vLLM. The e2e tests do the same against
the real fleet.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli.app import app
from modelfleet.runtime.ports import free_port
from modelfleet.settings import FleetSettings
from modelfleet.targets.local.runs import LocalRun, RunBook
from tests.unit.test_smoke_endpoint import KEY, SECRET, Behaviour, FakeEndpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO = "smollm2-135m"


@pytest.fixture
def endpoint(fleet_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEndpoint]:
    """The demo model "running" on the local target at a scripted endpoint, with a proxy token in env."""
    shutil.copytree(REPO_ROOT / "models" / DEMO, fleet_repo / "models" / DEMO)
    # The scripted endpoint answers the serving checks only; the quality gate (golden.toml) is
    # tested against real vLLM (tests/e2e/test_quality_gate.py).
    (fleet_repo / "models" / DEMO / "golden.toml").unlink()
    monkeypatch.setenv("FLEET_PROXY_TOKEN_ID", KEY)
    monkeypatch.setenv("FLEET_PROXY_TOKEN_SECRET", SECRET)
    with FakeEndpoint(Behaviour(served_names=[DEMO])) as running:
        port = int(running.server.server_address[1])
        RunBook(FleetSettings().state_path).write(
            LocalRun(model=DEMO, spec_hash="test", supervisor_pid=os.getpid(), edge_port=port, state="ready")
        )
        yield running


def report(fleet_repo: Path) -> dict[str, object]:
    return dict(json.loads((fleet_repo / ".fleet" / "reports" / f"{DEMO}.json").read_text()))


def test_a_passing_smoke_exits_0_and_writes_its_part(endpoint: FakeEndpoint, fleet_repo: Path) -> None:
    done = CliRunner().invoke(app, ["smoke", DEMO, "--timeout", "10"])
    assert done.exit_code == 0, done.output
    assert "smoke passed" in done.output
    smoke = report(fleet_repo)["parts"]["smoke"]  # type: ignore[index]
    assert smoke["ok"] is True and smoke["target"] == "local" and smoke["boot"] == "cold"
    assert len(smoke["checks"]) == 8
    # The report says the chat answered, never what: no completion is written anywhere.
    chat = next(c for c in smoke["checks"] if c["name"] == "chat completion answers")
    assert chat["detail"].startswith("answered ") and "Paris" not in json.dumps(report(fleet_repo))


def test_a_wrong_token_exits_1_and_says_which_variables_to_check(
    endpoint: FakeEndpoint, fleet_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_PROXY_TOKEN_SECRET", "ws-wrong-one")
    done = CliRunner().invoke(app, ["smoke", DEMO, "--timeout", "5"])
    assert done.exit_code == 1
    assert "the endpoint rejected the token from FLEET_PROXY_TOKEN_ID / FLEET_PROXY_TOKEN_SECRET" in done.output
    assert "ws-wrong-one" not in done.output
    assert report(fleet_repo)["parts"]["smoke"]["ok"] is False  # type: ignore[index]


def test_rollback_on_failure_records_a_target_without_rollback_as_skipped(
    endpoint: FakeEndpoint, fleet_repo: Path
) -> None:
    endpoint.behaviour.expose_dev_routes = True
    done = CliRunner().invoke(app, ["smoke", DEMO, "--rollback-on-failure", "--timeout", "10"])
    assert done.exit_code == 1
    assert "2 of 8 checks failed (POST /collective_rpc -> 404, GET /server_info -> 404)" in done.output
    rollback = report(fleet_repo)["parts"]["rollback"]  # type: ignore[index]
    assert rollback["result"] == "skipped" and "no rollback" in rollback["detail"]
    markdown = CliRunner().invoke(app, ["report", DEMO]).output
    assert "| **failed** 6/8 | - | skipped |" in markdown


def test_fleet_rollback_on_the_local_target_exits_1_and_records_what_smoke_would(
    endpoint: FakeEndpoint, fleet_repo: Path
) -> None:
    done = CliRunner().invoke(app, ["rollback", DEMO])

    assert done.exit_code == 1
    assert "rollback of smollm2-135m skipped: the local target has no rollback" in done.output
    assert "rollback needs FLEET_TARGET=modal" in done.output
    from_rollback = report(fleet_repo)["parts"]["rollback"]  # type: ignore[index]
    assert from_rollback["target"] == "local" and from_rollback["result"] == "skipped"

    endpoint.behaviour.expose_dev_routes = True
    CliRunner().invoke(app, ["smoke", DEMO, "--rollback-on-failure", "--timeout", "10"])
    from_smoke = report(fleet_repo)["parts"]["rollback"]  # type: ignore[index]
    assert {k: v for k, v in from_rollback.items() if k != "at"} == {k: v for k, v in from_smoke.items() if k != "at"}


def test_snapshot_on_the_local_target_stops_the_engine_and_records_one_plain_cold_start(
    endpoint: FakeEndpoint, fleet_repo: Path
) -> None:
    # An engine process of the model's run (its own process group, as the supervisor starts it).
    engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        book = RunBook(FleetSettings().state_path)
        run = book.read(DEMO)
        assert run is not None
        run.engine_pid = engine.pid
        book.write(run)

        done = CliRunner().invoke(app, ["snapshot", DEMO, "--tries", "3", "--timeout", "10"])

        assert done.exit_code == 0, done.output
        assert engine.wait(timeout=60) is not None  # force_cold_start stopped it before the probe
    finally:
        engine.kill()
    snapshot = report(fleet_repo)["parts"]["snapshot"]  # type: ignore[index]
    assert snapshot["target"] == "local" and snapshot["result"] == "plain-cold-start" and snapshot["ok"] is True
    assert snapshot["snapshots_enabled"] is False and len(snapshot["tries"]) == 1
    assert snapshot["cold_start_ttft_seconds"] == snapshot["tries"][0]["ttft_seconds"] > 0


def test_a_model_that_is_not_running_is_a_one_line_error(fleet_repo: Path) -> None:
    shutil.copytree(REPO_ROOT / "models" / DEMO, fleet_repo / "models" / DEMO)
    done = CliRunner().invoke(app, ["smoke", DEMO])
    assert done.exit_code == 1
    assert "smollm2-135m is not running on the local target" in done.output


def test_smoke_url_checks_a_candidate_endpoint_instead_of_the_live_one(
    endpoint: FakeEndpoint, fleet_repo: Path
) -> None:
    # The live record now names a port nothing listens on; --url names the candidate that serves.
    RunBook(FleetSettings().state_path).write(
        LocalRun(model=DEMO, spec_hash="test", supervisor_pid=os.getpid(), edge_port=free_port(), state="ready")
    )
    done = CliRunner().invoke(app, ["smoke", DEMO, "--timeout", "10", "--url", endpoint.url])
    assert done.exit_code == 0, done.output
    assert f"smoke passed: {DEMO} at {endpoint.url}" in done.output
    assert report(fleet_repo)["parts"]["smoke"]["url"] == endpoint.url  # type: ignore[index]
