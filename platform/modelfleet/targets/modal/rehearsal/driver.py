"""Start the rehearsed container as a fresh process, follow its stages, wait for its port, stop it.

The process gets exactly the plan's environment (nothing of the caller's), its own
session (a hard stop kills the whole group; vLLM's guardian dies with its parent, see
``runtime/engine.py``), and reports stages as ``@rehearsal`` lines (``container.py``).
Everything else it prints -- Modal's and the hooks' logs -- is kept as a tail for the
error message. vLLM's own log is ``serving.LOG_PATH`` (the path the container uses).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from modelfleet.targets.modal.rehearsal.plan import PROGRESS_MARK, RehearsalError, RehearsalPlan
from modelfleet.targets.modal.serving import LOG_PATH

CONTAINER_MODULE = "modelfleet.targets.modal.rehearsal.container"
TAIL_LINES = 40


@dataclass
class Stage:
    """One ``@rehearsal`` line: its stage name and fields, and when it arrived."""

    name: str
    fields: dict[str, object]
    at: float = field(default_factory=time.monotonic)


def _names(value: object) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def describe(stage: Stage) -> str | None:
    """The progress line a person reads for a stage; None for stages not worth a line."""
    f = stage.fields
    if stage.name == "import":
        return f"imported {f['module']} with the image's bundle ({f['seconds']} s)"
    if stage.name == "hooks":
        found = "; ".join(
            f"{key}: {_names(f[key]) or '-'}" for key in ("enter(snap=True)", "enter(snap=False)", "web", "exit")
        )
        return f"{f['kind']} {f['service']}, hooks found by Modal's decorator metadata -- {found}"
    if stage.name == "volumes":
        return f"the definition mounts {_names(f['mounts']) or 'no volume'}"
    if stage.name == "begin":
        return f"{f['phase']} ..."
    if stage.name == "end":
        return f"{f['phase']} done ({f['seconds']} s)"
    if stage.name == "snapshot":
        return (
            f"snapshot point: Modal would checkpoint this process now (task {f['task_id']}); "
            f"continuing as the restored container (task {f['restored_task_id']})"
        )
    if stage.name == "ready":
        if f.get("via") == "modal relay":
            return f"serving: port {f['port']} -> Modal's relay -> web server port {f['web_server_port']}"
        return f"serving on port {f['port']}"
    if stage.name == "done":
        return f"container exited cleanly ({f['seconds']} s in all)"
    return None


class RehearsedContainer:
    """The container process of a rehearsal; ``with`` it to stop it on the way out."""

    def __init__(self, plan: RehearsalPlan, *, on_line: Callable[[str], None] = lambda line: None) -> None:
        self.plan = plan
        self.on_line = on_line
        self.stages: list[Stage] = []
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.process: subprocess.Popen[str] | None = None
        self._changed = threading.Condition()
        self._reader: threading.Thread | None = None
        self._started = 0.0

    def start(self) -> RehearsedContainer:
        """Launch the container process; returns at once."""
        self.plan.workdir.mkdir(parents=True, exist_ok=True)
        (self.plan.workdir / "home").mkdir(exist_ok=True)
        for volume in self.plan.volumes:
            volume.local.mkdir(parents=True, exist_ok=True)
        self._started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", CONTAINER_MODULE],
            env=self.plan.env,
            cwd=self.plan.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name="rehearsal-reader", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.rstrip("\n")
            if line.startswith(PROGRESS_MARK):
                data = json.loads(line[len(PROGRESS_MARK) :])
                stage = Stage(str(data.pop("stage")), data)
                with self._changed:
                    self.stages.append(stage)
                    self._changed.notify_all()
                text = describe(stage)
                if text is not None:
                    self.on_line(f"[{stage.at - self._started:7.1f} s] {text}")
            else:
                self.tail.append(line)
        with self._changed:
            self._changed.notify_all()

    def stage(self, name: str) -> Stage | None:
        """The first stage of that name so far."""
        with self._changed:
            return next((s for s in self.stages if s.name == name), None)

    def wait_ready(self, timeout: float) -> str:
        """The container's URL once it serves; raises with the container's output if it exits or times out."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                ready = next((s for s in self.stages if s.name == "ready"), None)
                if ready is not None:
                    return f"http://127.0.0.1:{ready.fields['port']}"
                exited = self.process is not None and self.process.poll() is not None
                left = deadline - time.monotonic()
                if exited or left <= 0:
                    break
                self._changed.wait(min(left, 1.0))
        reason = (
            f"exited with code {self.process.returncode}"
            if exited and self.process
            else f"not serving after {timeout:.0f} s"
        )
        raise RehearsalError(f"rehearsed container of {self.plan.bundle.model}: {reason}\n{self.output_tail()}")

    def output_tail(self) -> str:
        """The container's last lines, and where vLLM's log is."""
        return "\n".join([*self.tail, f"(vLLM's log: {LOG_PATH})"])

    def stop(self, grace: float = 60.0) -> int:
        """SIGTERM (Modal's exit hooks run), then the whole group killed after ``grace``; the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        if self._reader is not None:
            self._reader.join(10)
        return self.process.returncode

    def __enter__(self) -> RehearsedContainer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
