"""The rehearsal's ``@app.server`` path: Modal's own runtime functions run the hooks in order, then the port serves.

The demo's e2e rehearsal covers the serving class the Modal target deploys today; this
covers the Modal Server shape with a small real app (``tests/support/rehearsal_server_app``),
no vLLM: seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from modelfleet.runtime.command import free_port
from modelfleet.targets.modal.rehearsal.plan import PROGRESS_MARK, RESTORED_TASK_ID, SNAPSHOT_TASK_ID
from tests.support.modal_api_target import REPO

RUN = (
    "import sys; from modelfleet.targets.modal.rehearsal.container import main; "
    "sys.exit(main('tests.support.rehearsal_server_app', checkpointing=True))"
)


def test_a_modal_server_runs_enter_hooks_around_the_snapshot_point_serves_and_stops_with_its_exit_hook() -> None:
    port = free_port()
    env = {
        **os.environ,
        "REHEARSAL_TEST_PORT": str(port),
        "MODAL_TASK_ID": SNAPSHOT_TASK_ID,
        "MODAL_ENABLE_SNAP_RESTORE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", RUN], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if '"stage": "ready"' in line:
                break
        answer = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    lines += rest.splitlines()

    assert process.returncode == 0, "\n".join(lines)
    assert answer.status_code == 200
    stages = [json.loads(line[len(PROGRESS_MARK) :]) for line in lines if line.startswith(PROGRESS_MARK)]
    hooks = next(s for s in stages if s["stage"] == "hooks")
    assert (hooks["kind"], hooks["enter(snap=True)"], hooks["enter(snap=False)"], hooks["exit"]) == (
        "server",
        ["before_snapshot"],
        ["start"],
        ["stop"],
    )
    steps = [s.get("phase", s["stage"]) for s in stages if s["stage"] in ("end", "snapshot", "ready", "done")]
    assert steps == ["enter(snap=True)", "snapshot", "enter(snap=False)", "server port", "ready", "exit", "done"]
    # The snapshot point hands the container a new task id, as Modal's memory_restore does.
    assert f"restored from task {SNAPSHOT_TASK_ID} as {RESTORED_TASK_ID}" in lines
    # The exit hook stopped the server.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
