"""A minimal ``@app.server`` app for the rehearsal's server path: hooks that start and stop a real HTTP server.

Why: the serving app's shape (classic web server class or Modal Server) is the Modal
target's choice and may change; the rehearsal must run either through Modal's own
runtime functions. This app has every hook kind and a real port, and no vLLM, so the
server path is tested in seconds. The port comes from ``REHEARSAL_TEST_PORT``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import modal

PORT = int(os.environ.get("REHEARSAL_TEST_PORT", "8000"))
# "enter": the enter(snap=False) hook raises, as a hook whose engine does not start.
FAIL = os.environ.get("REHEARSAL_TEST_FAIL", "")

app = modal.App("rehearsal-server-test")


@app.server(port=PORT, startup_timeout=60, enable_memory_snapshot=True)
class Web:
    """``enter(snap=True)`` records the task id; ``enter(snap=False)`` starts the server; exit stops it."""

    @modal.enter(snap=True)
    def before_snapshot(self) -> None:
        self.snapshot_task = os.environ.get("MODAL_TASK_ID")

    @modal.enter(snap=False)
    def start(self) -> None:
        if FAIL == "enter":
            raise RuntimeError("the server did not start")
        print(f"restored from task {self.snapshot_task} as {os.environ.get('MODAL_TASK_ID')}", flush=True)
        command = [sys.executable, "-m", "http.server", str(PORT), "--bind", "0.0.0.0"]
        self.server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @modal.exit()
    def stop(self) -> None:
        self.server.terminate()
        self.server.wait(10)
