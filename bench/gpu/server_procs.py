"""The front servers as processes, their CPU time, and ``vllm bench serve`` run in this process.

Kept apart from ``servers.py`` so the run reads as its steps. The load generator is
imported once and called in-process (as ``bench/edge_overhead.py`` does): each
``vllm bench serve`` subprocess spent ~30 s importing vLLM for ~7 s of load, and
device minutes are scarce. The argv is the same one runs 1-3 passed on the command line.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.gpu.throughput import KEEP, PERCENTILE_KEY

# Options that only say where to save the result file (which would hold generated text).
SAVE_OPTIONS = {"--save-result": 0, "--result-dir": 1, "--result-filename": 1}


class ServerProcess:
    """A server started in its own session, logging to a file, ready once GET /health answers 200."""

    def __init__(self, name: str, argv: list[str], log_path: Path, port: int) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> float:
        """Launch and wait for /health 200; seconds taken."""
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() - started < timeout:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/health").status_code == 200:
                        return time.monotonic() - started
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f}s: {self.tail()}")

    def serving_pid(self) -> int | None:
        """The process that serves: the guardian's child where a guardian leads, else the process itself."""
        if self.process is None:
            return None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError, ValueError):
            found = children.read_text().split()
            if found:
                return int(found[0])
        return self.process.pid

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds a process has used so far (psutil), None when it is gone."""
    if pid is None:
        return None
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def run_load_in_process(command: list[str], log: Path) -> dict[str, Any]:
    """``vllm bench serve`` with ``command``'s arguments, in this process; the figures that matter."""
    from vllm.benchmarks.serve import add_cli_args, main
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    argv = _without_save_options(command[command.index("serve") + 1 :])
    parser = FlexibleArgumentParser()  # type: ignore[no-untyped-call]
    add_cli_args(parser)
    args = parser.parse_args(argv)
    output = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(output):
        result = main(args)
    log.write_text("vllm bench serve " + " ".join(argv) + "\n" + output.getvalue())
    figures: dict[str, Any] = {"tool": "vllm bench serve (in-process)", "argv": ["vllm", "bench", "serve", *argv]}
    figures["wall_s"] = round(time.monotonic() - started, 1)
    figures.update({key: _plain(result.get(key)) for key in KEEP})
    figures.update({key: _plain(value) for key, value in result.items() if PERCENTILE_KEY.fullmatch(key)})
    return figures


def _without_save_options(argv: list[str]) -> list[str]:
    kept: list[str] = []
    skip = 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        if arg in SAVE_OPTIONS:
            skip = SAVE_OPTIONS[arg]
            continue
        kept.append(arg)
    return kept


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
