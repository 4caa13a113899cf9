"""The vLLM process: start it, wait until it is healthy, watch it, stop it with everything it forked.

The process half of the engine; the HTTP half -- warm-up, sleep, wake -- is
``engine_client.EngineClient``, which ``Engine.client`` holds for this process's port.
Together they make the steps Modal's snapshot hooks need: before the snapshot,
``prepare_for_snapshot`` (start, wait healthy, warm up, sleep); after each restore,
``resume_after_restore`` (wake); the local supervisor starts, watches and restarts.
Start errors carry the tail of vLLM's log, because the user must see *why* a start
failed (out of memory, a bad flag, missing weights).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import psutil

from modelfleet.runtime import guardian
from modelfleet.runtime.command import ENGINE_HOST, Platform, vllm_command, vllm_env
from modelfleet.runtime.engine_client import EngineClient, EngineError
from modelfleet.runtime.ports import free_port
from modelfleet.spec.model import ModelSpec

LOG_TAIL_LINES = 30
SLEEP_FLAG = "--enable-sleep-mode"
SERVED_NAME_FLAG = "--served-model-name"
# How long the guardian lets vLLM shut down cleanly after its owner died.
GUARDIAN_GRACE_SECONDS = 10
HEALTH_POLL_SECONDS = 0.5


class EngineStartError(EngineError):
    """vLLM exited or never became healthy; carries the end of its log."""


class Engine:
    """One vLLM server bound to 127.0.0.1 on an internal port, as a child process.

    vLLM runs under a small guardian process (``guardian.py``) that leads its own process
    group -- vLLM forks an engine-core and workers into it -- so ``stop`` reaches all of
    them; the kernel signals the guardian when its parent dies and the guardian clears the
    group, so a crashed supervisor or container entrypoint leaves nothing behind. ``pid``
    is the guardian's (and the group's) id; ``returncode`` is vLLM's exit code. The HTTP
    calls to this server (warm-up, sleep, wake) are ``client``'s.
    """

    def __init__(
        self,
        command: list[str],
        *,
        env: Mapping[str, str],
        port: int,
        log_path: Path,
        served_name: str | None = None,
        socket_path: Path | None = None,
        isolate: bool = False,
    ) -> None:
        self.command = command
        self.env = dict(env)
        self._port = port
        self.log_path = log_path
        # vLLM's Unix socket (``--uds``) when it serves on one; ``isolate``: it runs in a
        # network namespace of its own with loopback only (``netns``), where that socket
        # is the one way in.
        self.socket_path = socket_path
        self.isolate = isolate
        self.process: subprocess.Popen[bytes] | None = None
        # The control calls for this server, decided by the command as given here.
        self.client = EngineClient(
            self.url,
            served_name=served_name or _flag_value(command, SERVED_NAME_FLAG) or "model",
            sleep_mode=SLEEP_FLAG in command,
            socket_path=str(socket_path) if socket_path else None,
        )

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
        socket_path: Path | None = None,
        isolate: bool = False,
    ) -> Engine:
        """The engine for a model spec: on a free loopback port unless one is given, or on ``socket_path``.

        ``isolate`` (with ``socket_path``): vLLM runs in a network namespace with loopback
        only; the caller checks ``netns.namespace_refusal()`` first.
        """
        if isolate and socket_path is None:
            raise EngineError("an isolated engine serves on a Unix socket: give socket_path")
        port = 0 if socket_path else port or free_port()
        command = vllm_command(
            spec,
            model_path=model_path,
            served_name=served_name,
            port=port,
            platform=platform,
            entry=entry,
            socket_path=socket_path,
        )
        return cls(
            command,
            env=vllm_env(spec, platform=platform),
            port=port,
            log_path=log_path,
            served_name=served_name,
            socket_path=socket_path,
            isolate=isolate,
        )

    @property
    def port(self) -> int:
        """vLLM's internal port."""
        return self._port

    @property
    def url(self) -> str:
        """vLLM's own base URL (reachable only from this machine or container); on a socket, only the Host it names."""
        if self.socket_path is not None:
            return "http://localhost"
        return f"http://{ENGINE_HOST}:{self._port}"

    @property
    def pid(self) -> int | None:
        """The vLLM process id (also its process group id) once started."""
        return self.process.pid if self.process else None

    @property
    def returncode(self) -> int | None:
        """None while running (or never started); the exit code once vLLM exited."""
        return self.process.poll() if self.process else None

    def start(self) -> None:
        """Launch vLLM under the guardian; returns at once (``wait_healthy`` waits for it)."""
        if self.process and self.process.poll() is None:
            raise EngineError(f"vLLM already runs (pid {self.process.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.socket_path is not None:
            # vLLM binds the path and refuses one that exists: a socket left by a killed engine goes first.
            self.socket_path.parent.mkdir(parents=True, exist_ok=True)
            self.socket_path.unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            where = "in a network namespace with loopback only" if self.isolate else "on this machine's network"
            log.write(f"\n=== starting vLLM {where}: {' '.join(self.command)}\n".encode())
            log.flush()
            self.process = guardian.spawn(
                self.command,
                grace=GUARDIAN_GRACE_SECONDS,
                env={**os.environ, **self.env},
                output=log,
                isolate=self.isolate,
            )

    def wait_healthy(self, timeout: float) -> float:
        """Poll /health until 200; seconds waited. Raises with vLLM's reason if it exits first."""
        if self.process is None:
            raise EngineError("vLLM was not started")
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise EngineStartError(f"vLLM exited with code {code} before it was healthy:\n{self.log_tail()}")
            if self.client.healthy():
                return time.monotonic() - started
            # A short poll: the process exit is what we are usually waiting to notice.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=HEALTH_POLL_SECONDS)
        raise EngineStartError(f"vLLM was not healthy after {timeout:.0f}s:\n{self.log_tail()}")

    def prepare_for_snapshot(self, *, timeout: float, warm_up_requests: int, sleep_level: int) -> None:
        """The pre-snapshot hook's steps: start, wait healthy, warm up, sleep -- in that order.

        Refuses before starting anything when the command lacks sleep mode, rather than
        after a minute of loading.
        """
        self.client.require_sleep_mode()
        self.start()
        self.wait_healthy(timeout)
        self.client.warm_up(warm_up_requests)
        self.client.sleep(sleep_level)

    def resume_after_restore(self) -> float:
        """The post-restore hook's step: wake vLLM; seconds taken."""
        return self.client.wake()

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
