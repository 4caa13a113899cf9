"""The edge as its own process under the guardian: start, wait until it listens, drain and stop.

Why a process and not a thread of its owner: in a Modal container the owner is Modal's
own runtime process (its event loop, its heartbeats); an edge thread there would relay
every streamed chunk under that process's GIL. Its own interpreter keeps the edge's loop
alone (``edge_main``: uvloop, httptools, no access log). It runs under the guardian
(``guardian.spawn``), so a dead owner never leaves it holding the port.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from modelfleet.errors import FleetError
from modelfleet.runtime.edge import AuthMode
from modelfleet.runtime.guardian import spawn

# The folder that holds the ``modelfleet`` package (modelfleet/runtime/edge_process.py -> two up).
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
LOG_TAIL_LINES = 20
# What the guardian adds to the edge's own drain before it kills what is left.
GUARDIAN_MARGIN_SECONDS = 5.0


class EdgeStartError(FleetError):
    """The edge process exited or never listened; carries the end of its log."""


@dataclass
class EdgeProcess:
    """One edge process in front of ``upstream_url``, bound to ``host:port``.

    ``grace`` is the drain on stop: requests in flight get that long to finish
    (``exit_grace_period`` on Modal). ``health_info`` is added to every /health answer.
    """

    upstream_url: str
    port: int
    auth_mode: AuthMode
    upstream_timeout: float
    grace: int
    log_path: Path
    host: str = "0.0.0.0"  # the container's public port: Modal forwards to it
    health_info: dict[str, object] = field(default_factory=dict)
    # vLLM's Unix socket, when it serves on one (``upstream_url`` then names the Host only).
    upstream_socket: str | None = None
    process: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        """The edge's command line (``python -m modelfleet.runtime.edge_main ...``)."""
        argv = [
            sys.executable, "-m", "modelfleet.runtime.edge_main",
            "--upstream", self.upstream_url,
            "--host", self.host,
            "--port", str(self.port),
            "--auth", self.auth_mode,
            "--timeout", str(self.upstream_timeout),
            "--graceful-shutdown", str(self.grace),
        ]  # fmt: skip
        if self.upstream_socket:
            argv += ["--upstream-socket", self.upstream_socket]
        if self.health_info:
            argv += ["--health-json", json.dumps(self.health_info, separators=(",", ":"))]
        return argv

    @property
    def running(self) -> bool:
        """Whether the edge (its guardian) is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float) -> float:
        """Launch the edge and wait until its port accepts connections; seconds waited."""
        if self.running:
            return 0.0
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = spawn(self.argv(), grace=self.grace + GUARDIAN_MARGIN_SECONDS, env=_env(), output=log)
        deadline = started + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise EdgeStartError(f"the edge exited with code {code} before it listened:\n{self.log_tail()}")
            if _accepts(self.port):
                return time.monotonic() - started
            time.sleep(0.05)
        self.stop()
        raise EdgeStartError(f"the edge did not listen on port {self.port} within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the guardian: the edge drains for ``grace`` seconds, then the group is cleared."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=self.grace + 2 * GUARDIAN_MARGIN_SECONDS)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self) -> str:
        """The last lines of the edge's log (no request content is ever logged there)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no edge log)"
        return "\n".join(lines[-LOG_TAIL_LINES:])


def _env() -> dict[str, str]:
    """This environment, with the folder holding ``modelfleet`` first on ``PYTHONPATH``.

    ``python -m modelfleet.runtime.edge_main`` must import the package whatever the working
    directory: in a Modal container the package sits in /root (``add_local_python_source``,
    "on the PYTHONPATH of any executed Modal Functions": modal/_image.py), which the docs do
    not promise to a child process started from a hook.
    """
    root = str(PACKAGE_ROOT)
    current = os.environ.get("PYTHONPATH", "")
    parts = [root, *(part for part in current.split(os.pathsep) if part and part != root)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(parts)}


def _accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
