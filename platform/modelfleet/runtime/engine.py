"""The vLLM process: start, wait healthy, warm up, sleep, wake, stop.

These are exactly the steps Modal's snapshot hooks need -- before the snapshot:
start + wait_healthy + warm_up + sleep; after each restore: wake -- and what the
local supervisor runs. Errors carry the tail of vLLM's log, because the user must
see *why* a start failed (out of memory, a bad flag, missing weights).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from modelfleet.errors import FleetError

LOG_TAIL_LINES = 30
PR_SET_PDEATHSIG = 1


class EngineError(FleetError):
    """vLLM failed to start, answer, sleep or wake; the message says why."""


class EngineStartError(EngineError):
    """vLLM exited or never became healthy; carries the end of its log."""


class SleepUnsupportedError(EngineError):
    """Sleep mode needs a GPU; on CPU vLLM refuses ``--enable-sleep-mode``."""


def _die_with_parent() -> None:
    """In the child before exec: own process group, and SIGKILL if the parent dies (no orphans)."""
    os.setpgrp()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Engine:
    """One vLLM server bound to 127.0.0.1 on an internal port, as a child process."""

    def __init__(self, command: list[str], *, env: Mapping[str, str], port: int, log_path: Path) -> None:
        self.command = command
        self.env = dict(env)
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """vLLM's own base URL (reachable only from this machine/container)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The vLLM process id while it runs."""
        return self.process.pid if self.process else None

    @property
    def returncode(self) -> int | None:
        """None while running (or never started); the exit code once vLLM exited."""
        return self.process.poll() if self.process else None

    def start(self) -> None:
        """Launch vLLM; returns at once (``wait_healthy`` waits for it)."""
        if self.process and self.process.poll() is None:
            raise EngineError(f"vLLM already runs (pid {self.process.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== starting vLLM: {' '.join(self.command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                preexec_fn=_die_with_parent,
            )

    def wait_healthy(self, timeout: float) -> float:
        """Poll /health until 200; seconds waited. Raises with vLLM's reason if it exits first."""
        if self.process is None:
            raise EngineError("vLLM was not started")
        started = time.monotonic()
        deadline = started + timeout
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                code = self.process.poll()
                if code is not None:
                    raise EngineStartError(f"vLLM exited with code {code} before it was healthy:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.url}/health").status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass  # refused while starting
                time.sleep(0.5)
        raise EngineStartError(f"vLLM was not healthy after {timeout:.0f}s:\n{self.log_tail()}")

    def warm_up(self, served_name: str, requests: int, *, max_tokens: int = 16) -> int:
        """Send ``requests`` real chat requests, so lazy initialisation happens before a snapshot."""
        body = {
            "model": served_name,
            "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        with httpx.Client(timeout=300.0) as client:
            for _ in range(requests):
                response = client.post(f"{self.url}/v1/chat/completions", json=body)
                if response.status_code != 200:
                    raise EngineError(f"warm-up request failed: HTTP {response.status_code} {response.text[:200]}")
        return requests

    def sleep(self, level: int = 1) -> float:
        """Put vLLM to sleep (level 1: weights to CPU RAM, KV cache dropped); seconds taken."""
        self._require_sleep_mode()
        return self._post(f"/sleep?level={level}")

    def wake(self) -> float:
        """Wake vLLM after a restore; seconds taken."""
        self._require_sleep_mode()
        return self._post("/wake_up")

    def is_sleeping(self) -> bool:
        """Whether vLLM reports itself asleep."""
        self._require_sleep_mode()
        response = httpx.get(f"{self.url}/is_sleeping", timeout=10.0)
        response.raise_for_status()
        return bool(response.json().get("is_sleeping"))

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM vLLM's process group, SIGKILL after ``grace``; its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
        # vLLM forks an engine-core process into the same group: make sure none outlives us.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines vLLM wrote."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _require_sleep_mode(self) -> None:
        if "--enable-sleep-mode" not in self.command:
            raise SleepUnsupportedError(
                "sleep and wake need vLLM started with --enable-sleep-mode, which only GPUs support "
                "(vLLM on CPU refuses it: 'Sleep mode is not supported on current platform'); "
                "snapshots apply to the Modal target only"
            )

    def _post(self, path: str) -> float:
        started = time.monotonic()
        response = httpx.post(f"{self.url}{path}", timeout=600.0)
        if response.status_code != 200:
            raise EngineError(f"POST {path} failed: HTTP {response.status_code} {response.text[:200]}")
        return time.monotonic() - started
