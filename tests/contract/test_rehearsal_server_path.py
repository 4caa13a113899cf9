"""The rehearsal's ``@app.server`` path: Modal's own runtime functions run the hooks in order, then the port serves.

The demo's e2e rehearsal covers the serving class the Modal target deploys today; this
covers the Modal Server shape with a small real app (``tests/support/rehearsal_server_app``),
no vLLM: seconds. Also what makes a rehearsal fail: a hook that raises, a port in use.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass

import httpx
import pytest

from modelfleet.catalog import load_catalog
from modelfleet.runtime.command import free_port
from modelfleet.settings import FleetSettings
from modelfleet.targets.modal.bundle import BUNDLE_ENV, make_bundle
from modelfleet.targets.modal.ports import EDGE_PORT
from modelfleet.targets.modal.primitive import serving_primitive
from modelfleet.targets.modal.rehearsal.plan import PROGRESS_MARK, RESTORED_TASK_ID, SNAPSHOT_TASK_ID
from tests.support.modal_api_target import REPO

RUN = (
    "import sys; from modelfleet.targets.modal.rehearsal.container import main; "
    "sys.exit(main('tests.support.rehearsal_server_app', checkpointing=True))"
)


@dataclass
class Rehearsed:
    """A finished container process: exit code, output lines, progress stages, the answer while it served."""

    code: int
    lines: list[str]
    answer: int | None

    @property
    def stages(self) -> list[dict[str, object]]:
        return [json.loads(line[len(PROGRESS_MARK) :]) for line in self.lines if line.startswith(PROGRESS_MARK)]


def rehearse_server_app(port: int, **env: str) -> Rehearsed:
    """Run the test app's container; once it serves, GET its port, then SIGTERM it."""
    environment = {
        **os.environ,
        "REHEARSAL_TEST_PORT": str(port),
        "MODAL_TASK_ID": SNAPSHOT_TASK_ID,
        "MODAL_ENABLE_SNAP_RESTORE": "1",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-c", RUN],
        env=environment,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    answer = None
    try:
        for line in process.stdout:  # ends when the process exits
            lines.append(line.rstrip("\n"))
            if '"stage": "ready"' in line:
                answer = httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code
                process.send_signal(signal.SIGTERM)
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
    return Rehearsed(process.returncode, lines, answer)


def test_a_modal_server_runs_enter_hooks_around_the_snapshot_point_serves_and_stops_with_its_exit_hook() -> None:
    port = free_port()

    done = rehearse_server_app(port)

    assert done.code == 0, "\n".join(done.lines)
    assert done.answer == 200
    hooks = next(s for s in done.stages if s["stage"] == "hooks")
    assert (hooks["kind"], hooks["enter(snap=True)"], hooks["enter(snap=False)"], hooks["exit"]) == (
        "server",
        ["before_snapshot"],
        ["start"],
        ["stop"],
    )
    steps = [s.get("phase", s["stage"]) for s in done.stages if s["stage"] in ("end", "snapshot", "ready", "done")]
    assert steps == ["enter(snap=True)", "snapshot", "enter(snap=False)", "server port", "ready", "exit", "done"]
    # The snapshot point hands the container a new task id, as Modal's memory_restore does.
    assert f"restored from task {SNAPSHOT_TASK_ID} as {RESTORED_TASK_ID}" in done.lines
    # The exit hook stopped the server.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=5)


def test_a_hook_that_raises_fails_the_rehearsal_before_it_serves() -> None:
    done = rehearse_server_app(free_port(), REHEARSAL_TEST_FAIL="enter")

    assert done.code != 0
    assert done.answer is None
    assert "RuntimeError: the server did not start" in "\n".join(done.lines)
    assert not any(s["stage"] == "ready" for s in done.stages)


def test_a_port_already_in_use_is_refused_before_any_hook_runs() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]

        done = rehearse_server_app(port)

    assert done.code != 0
    assert f"port {port} is in use on this machine" in "\n".join(done.lines)
    assert not any(s["stage"] in ("begin", "ready") for s in done.stages)


INSPECT_ENTRY = """
import importlib, json
from modal._runtime.user_code_imports import import_server_service
from modal_proto import api_pb2
from modelfleet.targets.modal.rehearsal import container as c
module = importlib.import_module(c.ENTRY_MODULE)
name, obj = c.find_service(module)
definition = c.container_function_def(c.ENTRY_MODULE, name, obj, True)
service = import_server_service(definition, api_pb2.Object(), None, None)
print(json.dumps({"server": definition.is_server, "hooks": c.hook_names(type(service.user_cls_instance)),
                  "port": c.server_port(obj)[0]}))
"""


def test_the_serving_app_as_a_modal_server_gives_the_rehearsal_its_hooks_and_port() -> None:
    """The demo with a warm container deploys as an @app.server: the rehearsal finds it by Modal's metadata."""
    settings = FleetSettings(root=REPO)
    catalog = load_catalog(settings)
    bundle = make_bundle(catalog.require("smollm2-135m"), catalog, settings)
    # A Server needs a warm container and allowed egress (Servers take no block_network).
    spec = bundle.spec.model_copy(
        update={
            "scaling": bundle.spec.scaling.model_copy(update={"min_containers": 1}),
            "privacy": bundle.spec.privacy.model_copy(update={"egress": "allowed"}),
        }
    )
    assert serving_primitive(spec) == "server"
    env = {**os.environ, BUNDLE_ENV: bundle.model_copy(update={"spec": spec}).to_env(), "MODAL_IS_REMOTE": "1"}

    done = subprocess.run(
        [sys.executable, "-c", INSPECT_ENTRY], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["server"] is True
    assert found["port"] == EDGE_PORT
    assert found["hooks"] == {
        "enter(snap=True)": ["prepare"],
        "enter(snap=False)": ["boot"],
        "exit": ["stop"],
        "web": [],
    }
