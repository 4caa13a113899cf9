"""The vLLM process: start, wait healthy, warm up, sleep, wake, stop.

These are exactly the steps Modal's snapshot hooks need -- before the snapshot:
start + wait_healthy + warm_up + sleep (``prepare_for_snapshot``); after each restore:
wake (``resume_after_restore``) -- and what the local supervisor runs. Errors carry the
tail of vLLM's log, because the user must see *why* a start failed (out of memory, a
bad flag, missing weights).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx
import psutil

from modelfleet.errors import FleetError
from modelfleet.runtime.command import ENGINE_HOST, Platform, vllm_command, vllm_env
from modelfleet.runtime.ports import free_port
from modelfleet.spec.model import ModelSpec

LOG_TAIL_LINES = 30
PR_SET_PDEATHSIG = 1
SLEEP_FLAG = "--enable-sleep-mode"
# Run by path: it needs only the standard library, whatever the container has installed.
GUARDIAN = Path(__file__).with_name("guardian.py")
# How long the guardian lets vLLM shut down cleanly after its owner died.
GUARDIAN_GRACE_SECONDS = 10
WARM_UP_PROMPT = "Say hello in one short sentence."


class EngineError(FleetError):
    """vLLM failed to start, answer, sleep or wake; the message says why."""


class EngineStartError(EngineError):
    """vLLM exited or never became healthy; carries the end of its log."""


class SleepUnsupportedError(EngineError):
    """Sleep mode needs a GPU; on CPU vLLM refuses ``--enable-sleep-mode``."""


@dataclass(frozen=True)
class SnapshotPrep:
    """How long each pre-snapshot step took, for the boot report on /health."""

    healthy_seconds: float
    warm_up_seconds: float
    sleep_seconds: float


# The kernel sends PR_SET_PDEATHSIG when the *thread* that forked the child ends, not the
# process. Hooks and watchers often run on short-lived threads (Modal's enter hooks, a
# supervisor's watcher), so every engine is forked from this one thread, which lives as
# long as the interpreter.
_LAUNCHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-launcher")


def _die_with_parent() -> None:
    """In the child before exec: own process group, and SIGTERM when the parent dies.

    The child is the guardian, which turns that SIGTERM into clearing the whole group.
    """
    os.setpgrp()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Engine:
    """One vLLM server bound to 127.0.0.1 on an internal port, as a child process.

    vLLM runs under a small guardian process (``guardian.py``) that leads its own process
    group -- vLLM forks an engine-core and workers into it -- so ``stop`` reaches all of
    them; the kernel signals the guardian when its parent dies and the guardian clears the
    group, so a crashed supervisor or container entrypoint leaves nothing behind. ``pid``
    is the guardian's (and the group's) id; ``returncode`` is vLLM's exit code.
    """

    def __init__(
        self,
        command: list[str],
        *,
        env: Mapping[str, str],
        port: int,
        log_path: Path,
        served_name: str | None = None,
    ) -> None:
        self.command = command
        self.env = dict(env)
        self._port = port
        self.log_path = log_path
        self.served_name = served_name or _flag_value(command, "--served-model-name") or "model"
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_spec(
        cls,
        spec: ModelSpec,
        *,
        model_path: Path,
        served_name: str,
        platform: Platform,
        log_path: Path,
        port: int | None = None,
        entry: list[str] | tuple[str, ...] | None = None,
    ) -> Engine:
        """The engine for a model spec, on a free loopback port unless one is given."""
        port = port or free_port()
        command = vllm_command(
            spec, model_path=model_path, served_name=served_name, port=port, platform=platform, entry=entry
        )
        return cls(
            command, env=vllm_env(spec, platform=platform), port=port, log_path=log_path, served_name=served_name
        )

    @property
    def port(self) -> int:
        """vLLM's internal port."""
        return self._port

    @property
    def url(self) -> str:
        """vLLM's own base URL (reachable only from this machine or container)."""
        return f"http://{ENGINE_HOST}:{self._port}"

    @property
    def pid(self) -> int | None:
        """The vLLM process id (also its process group id) once started."""
        return self.process.pid if self.process else None

    @property
    def returncode(self) -> int | None:
        """None while running (or never started); the exit code once vLLM exited."""
        return self.process.poll() if self.process else None

    @property
    def sleep_capable(self) -> bool:
        """Whether this engine was started with sleep mode (GPU + snapshots)."""
        return SLEEP_FLAG in self.command

    def start(self) -> None:
        """Launch vLLM; returns at once (``wait_healthy`` waits for it)."""
        if self.process and self.process.poll() is None:
            raise EngineError(f"vLLM already runs (pid {self.process.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== starting vLLM: {' '.join(self.command)}\n".encode())
            log.flush()
            self.process = _LAUNCHER.submit(
                subprocess.Popen,
                [sys.executable, str(GUARDIAN), str(GUARDIAN_GRACE_SECONDS), "--", *self.command],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                preexec_fn=_die_with_parent,
            ).result()

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
                    pass  # connection refused while vLLM loads
                # A short poll: the process exit is what we are usually waiting to notice.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=0.5)
        raise EngineStartError(f"vLLM was not healthy after {timeout:.0f}s:\n{self.log_tail()}")

    def warm_up(self, requests: int, *, max_tokens: int = 16) -> float:
        """Send ``requests`` real chat requests so lazy initialisation happens before a snapshot; seconds."""
        body = {
            "model": self.served_name,
            "messages": [{"role": "user", "content": WARM_UP_PROMPT}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        started = time.monotonic()
        with httpx.Client(timeout=300.0) as client:
            for _ in range(requests):
                response = client.post(f"{self.url}/v1/chat/completions", json=body)
                if response.status_code != 200:
                    raise EngineError(f"warm-up request failed: HTTP {response.status_code} {response.text[:200]}")
        return time.monotonic() - started

    def sleep(self, level: int = 1) -> float:
        """Put vLLM to sleep (level 1: weights to CPU RAM, KV cache dropped); seconds taken."""
        self._require_sleep_mode()
        if level not in (1, 2):
            raise EngineError(f"sleep level {level} does not exist; vLLM knows 1 and 2")
        return self._post(f"/sleep?level={level}")

    def wake(self) -> float:
        """Wake vLLM (after a snapshot restore); seconds taken."""
        self._require_sleep_mode()
        return self._post("/wake_up")

    def is_sleeping(self) -> bool:
        """Whether vLLM reports itself asleep."""
        self._require_sleep_mode()
        response = httpx.get(f"{self.url}/is_sleeping", timeout=10.0)
        if response.status_code != 200:
            raise EngineError(f"GET /is_sleeping failed: HTTP {response.status_code} {response.text[:200]}")
        return bool(response.json().get("is_sleeping"))

    def prepare_for_snapshot(self, *, timeout: float, warm_up_requests: int, sleep_level: int) -> SnapshotPrep:
        """The pre-snapshot hook: start, wait healthy, warm up, sleep -- in that order."""
        self._require_sleep_mode()
        self.start()
        healthy = self.wait_healthy(timeout)
        warm = self.warm_up(warm_up_requests)
        slept = self.sleep(sleep_level)
        return SnapshotPrep(healthy_seconds=healthy, warm_up_seconds=warm, sleep_seconds=slept)

    def resume_after_restore(self) -> float:
        """The post-restore hook: wake vLLM; seconds taken."""
        return self.wake()

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM vLLM's process group, SIGKILL after ``grace``; its exit code. Returns once the group is gone."""
        if self.process is None:
            return None
        group = self.process.pid
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
        # vLLM forks an engine-core (and workers) into the same group: none may outlive it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
        code = self.process.wait()
        _wait_group_gone(group, timeout=10.0)
        return code

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines vLLM wrote."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _require_sleep_mode(self) -> None:
        if not self.sleep_capable:
            raise SleepUnsupportedError(
                "sleep and wake need vLLM started with --enable-sleep-mode, which needs a GPU "
                "(vLLM on CPU refuses it: 'Sleep mode is not supported on current platform'); "
                "snapshots apply to the Modal target only"
            )

    def _post(self, path: str) -> float:
        started = time.monotonic()
        try:
            response = httpx.post(f"{self.url}{path}", timeout=600.0)
        except httpx.HTTPError as error:
            raise EngineError(f"POST {path} failed: {error.__class__.__name__}; is vLLM running?") from None
        if response.status_code != 200:
            raise EngineError(f"POST {path} failed: HTTP {response.status_code} {response.text[:200]}")
        return time.monotonic() - started


def group_members(group: int) -> list[int]:
    """Live (non-zombie) processes in a process group (psutil, which vLLM itself requires)."""
    members = []
    for process in psutil.process_iter(["status"]):
        # A process may exit between the listing and getpgid: it is no member any more.
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == group:
                members.append(process.pid)
    return members


def _wait_group_gone(group: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while group_members(group) and time.monotonic() < deadline:
        time.sleep(0.1)


def _flag_value(command: list[str], flag: str) -> str | None:
    for index, arg in enumerate(command):
        if arg == flag and index + 1 < len(command):
            return command[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None
