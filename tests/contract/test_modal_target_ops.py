"""ModalTarget beyond a clean deploy: failures, credentials, state, containers, orphans (rollback: test_modal_rollback).

The real modal client runs in subprocesses (the driver, or the `fleet` CLI itself)
against a fresh loopback recorder per test, and the assertions read what the client
sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpclib import Status
from modal_proto import api_pb2

from modelfleet.catalog import load_catalog
from modelfleet.gitinfo import deploy_tag
from modelfleet.settings import FleetSettings
from modelfleet.state import load_state_file
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import REPO, TIMEOUT_S, create_workspace, drive, fleet_env, run_driver

FLEET = Path(sys.executable).parent / "fleet"
ALL = ["llama31-8b-instruct", "llama33-70b-instruct", "qwen25-vl-7b-instruct", "smollm2-135m"]


@pytest.fixture
def api() -> Iterator[ModalApiRecorder]:
    """A fresh recorder holding the volumes and secrets a real workspace has before a deploy."""
    with ModalApiRecorder() as recorder:
        create_workspace(recorder)
        yield recorder


def fleet_cli(api: ModalApiRecorder, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The `fleet` command as CI runs it (not at a terminal), pointed at the recorder."""
    return subprocess.run(
        [str(FLEET), *args],
        env={**fleet_env(api), "CI": "1", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def test_a_failed_function_create_fails_that_model_and_the_others_deploy(api: ModalApiRecorder) -> None:
    api.fail_function_create_for("qwen25", Status.INVALID_ARGUMENT, "GPU type 'L40S' is not available here")

    outcomes = {o["model"]: o for o in drive(api, "deploy", "commit-1")}

    assert {m: o["result"] for m, o in outcomes.items()} == {
        "llama31-8b-instruct": "ok",
        "llama33-70b-instruct": "ok",
        "qwen25-vl-7b-instruct": "failed",
        "smollm2-135m": "ok",
    }
    assert "GPU type 'L40S' is not available here" in outcomes["qwen25-vl-7b-instruct"]["detail"]
    assert sorted(api.apps()) == ["fleet-llama31-8b-instruct", "fleet-llama33-70b-instruct", "fleet-smollm2-135m"]
    assert sorted(drive(api, "state")["models"]) == ["llama31-8b-instruct", "llama33-70b-instruct", "smollm2-135m"]


def test_deploy_all_through_the_cli_reports_every_model_and_exits_1(api: ModalApiRecorder) -> None:
    api.fail_function_create_for("smollm2", Status.INVALID_ARGUMENT, "image build failed: no space left")

    done = fleet_cli(api, "deploy-all", "--yes", "--allow-dirty")

    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "3 ok, 1 failed" in out
    assert "image build failed: no space left" in out
    for model in ALL:
        assert f"fleet-{model}" in out
    # The three models, then the gateway in front of them.
    assert len(api.requests("AppPublish")) == 4 and "fleet-gateway" in out


def test_make_deploy_all_deploys_every_model_as_its_own_app(api: ModalApiRecorder) -> None:
    # `-o` keeps make from re-installing the virtualenv; --allow-dirty because other work is in progress here.
    done = subprocess.run(
        ["make", "-o", ".venv/.installed", "deploy-all", "CONFIRM=--yes --allow-dirty"],
        env={**fleet_env(api), "CI": "1"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 ok" in done.stdout
    assert sorted(api.apps()) == sorted([*(f"fleet-{m}" for m in ALL), "fleet-gateway"])
    expected_tag = deploy_tag(REPO, allow_dirty=True)  # the commit, "-dirty" only with uncommitted changes
    assert {req.deployment_tag for req in api.requests("AppPublish")} == {expected_tag}


def test_the_server_going_away_mid_deploy_fails_the_models_without_hanging(api: ModalApiRecorder) -> None:
    api.go_away(after_calls=25)
    started = time.monotonic()

    done = run_driver(api, "deploy", "commit-1")

    assert time.monotonic() - started < 90
    assert done.returncode == 0, done.stderr
    outcomes = json.loads(done.stdout.strip().splitlines()[-1])
    assert [o["model"] for o in outcomes] == ALL
    assert all(o["result"] == "failed" and o["detail"] for o in outcomes)
    assert api.stopped
    assert "AppPublish" not in api.call_names()


def test_without_modal_credentials_nothing_is_built_and_the_error_says_how_to_log_in(
    api: ModalApiRecorder, tmp_path: Path
) -> None:
    empty_config = tmp_path / "modal.toml"
    empty_config.write_text("")
    env = {k: v for k, v in fleet_env(api).items() if k not in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET")}
    env["MODAL_CONFIG_PATH"] = str(empty_config)

    done = run_driver(api, "deploy", "commit-1", env=env)

    assert done.returncode == 1
    assert "modal token new" in done.stderr
    assert "MODAL_TOKEN_ID" in done.stderr and "MODAL_TOKEN_SECRET" in done.stderr
    assert api.calls == []
    plan = subprocess.run(
        [str(FLEET), "plan"], env={**env, "CI": "1"}, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert plan.returncode == 1
    assert "modal token new" in plan.stderr and "Traceback" not in plan.stderr
    assert api.calls == []


def test_deployed_state_round_trips_through_the_dict_and_feeds_plan(api: ModalApiRecorder, tmp_path: Path) -> None:
    drive(api, "deploy", "commit-7", "smollm2-135m")

    state = drive(api, "state")
    catalog = load_catalog(FleetSettings(root=REPO))
    record = state["models"]["smollm2-135m"]
    assert (record["app"], record["tag"], record["version"]) == ("fleet-smollm2-135m", "commit-7", "v1")
    assert record["spec_hash"] == catalog.require("smollm2-135m").spec_hash()
    assert record["spec"] == catalog.require("smollm2-135m").spec.model_dump(mode="json")

    export = tmp_path / "state.json"
    done = fleet_cli(api, "state", "export", str(export))
    assert done.returncode == 0, done.stderr
    exported = load_state_file(export)
    # The export is the Dict's state, stamped with where and when it was read (the plan prints both).
    assert exported.model_dump(mode="json")["models"] == state["models"]
    assert exported.environment == "main" and exported.exported_at

    plan = fleet_cli(api, "plan", "--state", str(export), "--format", "json")
    actions = {e["model"]: e["action"] for e in json.loads(plan.stdout)["entries"]}
    assert actions == {
        "llama31-8b-instruct": "create",
        "llama33-70b-instruct": "create",
        "qwen25-vl-7b-instruct": "create",
        "smollm2-135m": "unchanged",
    }


def test_force_cold_start_stops_every_container_of_the_app(api: ModalApiRecorder) -> None:
    drive(api, "deploy", "commit-1", "smollm2-135m", "llama31-8b-instruct")
    mine = [api.start_container("fleet-smollm2-135m"), api.start_container("fleet-smollm2-135m")]
    other = api.start_container("fleet-llama31-8b-instruct")

    assert drive(api, "stop-containers", "smollm2-135m") == 2

    assert sorted(r.task_id for r in api.requests("ContainerStop")) == sorted(mine)
    assert api.running_containers("fleet-smollm2-135m") == []
    assert api.running_containers("fleet-llama31-8b-instruct") == [other]
    assert drive(api, "stop-containers", "smollm2-135m") == 0
    assert api.unimplemented == []


def test_orphans_are_prefixed_apps_no_folder_declares(api: ModalApiRecorder, tmp_path: Path) -> None:
    drive(api, "deploy", "commit-1", "smollm2-135m")
    app_file = tmp_path / "stray.py"
    app_file.write_text(
        textwrap.dedent(
            """
            import modal
            app = modal.App("stray")

            @app.function()
            def hello() -> str:
                return "hi"
            """
        )
    )
    for name in ("fleet-retired-model", "someone-elses-app"):
        deployed = subprocess.run(
            [sys.executable, "-m", "modal", "deploy", str(app_file), "--name", name],
            env=api.subprocess_env(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        assert deployed.returncode == 0, deployed.stderr

    assert drive(api, "orphans") == ["fleet-retired-model"]


def test_endpoint_status_and_teardown(api: ModalApiRecorder) -> None:
    drive(api, "deploy", "commit-1", "smollm2-135m")

    assert (
        drive(api, "endpoint", "smollm2-135m") == "https://modelfleet-test--fleet-smollm2-135m-server-serve.modal.run"
    )
    statuses = {s["model"]: s for s in drive(api, "status", "smollm2-135m", "qwen25-vl-7b-instruct")}
    assert statuses["smollm2-135m"]["state"] == "deployed"
    assert statuses["smollm2-135m"]["detail"]["version"] == "v1"
    assert statuses["smollm2-135m"]["detail"]["spec"] == "current"
    assert statuses["qwen25-vl-7b-instruct"] == {
        "model": "qwen25-vl-7b-instruct",
        "url": "",
        "state": "not deployed",
        "detail": {},
    }

    (outcome,) = drive(api, "teardown", "smollm2-135m")

    assert outcome["result"] == "ok"
    assert api.apps()["fleet-smollm2-135m"].state == api_pb2.APP_STATE_STOPPED
    assert drive(api, "state")["models"] == {}
    done = run_driver(api, "endpoint", "smollm2-135m")
    assert done.returncode == 1 and "is not deployed" in done.stderr
