"""A few long-lived ``modal`` CLI processes (``cli_worker``) that run JSON commands in turn.

``checked_json`` sends its commands here instead of starting ``python -m modal`` each time
(cli_worker.py says why). A command waits for an idle worker; at most ``POOL_SIZE`` run at
once. A worker that does not answer within the command's timeout is killed and the command
is a timed-out result, as with a subprocess; a worker that died is replaced by the next
command. The workers read their environment when they start (this process's, without the
model bundle ``app_build`` may have set for a moment), so callers that pass an environment
of their own keep using a subprocess.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from typing import IO, Any

from modelfleet.targets.modal.bundle import BUNDLE_ENV

WORKER_MODULE = "modelfleet.targets.modal.cli_worker"
POOL_SIZE = 2
# Wide, plain output: URLs and JSON must not be wrapped or coloured (as run_modal sets).
PLAIN_OUTPUT = {"COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb", "PYTHONUNBUFFERED": "1"}


class WorkerGone(Exception):
    """The worker process ended or broke the protocol; the command was not answered."""


class _Worker:
    """One ``cli_worker`` process and its pipes."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != BUNDLE_ENV}
        env.update(PLAIN_OUTPUT)
        self.process = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        self._pending = b""

    def call(self, args: tuple[str, ...], timeout: float) -> dict[str, Any] | None:
        """The worker's reply, or None when none came within ``timeout`` (the worker is then killed)."""
        stdin, stdout = self._pipes()
        try:
            stdin.write(json.dumps(list(args)).encode() + b"\n")
        except (BrokenPipeError, ValueError) as error:
            raise WorkerGone(str(error)) from None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                return None
            ready, _, _ = select.select([stdout], [], [], remaining)
            if ready:
                chunk = os.read(stdout.fileno(), 1 << 16)
                if not chunk:
                    raise WorkerGone("the worker exited")
                self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        try:
            reply: dict[str, Any] = json.loads(line)
        except ValueError:
            raise WorkerGone("the worker's reply is not JSON") from None
        return reply

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None or self.process.poll() is not None:
            raise WorkerGone("the worker exited")
        return stdin, stdout

    def kill(self) -> None:
        """End the worker now."""
        self.process.kill()
        self.process.wait()

    def close(self) -> None:
        """Let the worker finish (EOF), then make sure it is gone."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()


class CliPool:
    """Up to ``size`` workers, started on first use, shared by every thread of this process."""

    def __init__(self, size: int = POOL_SIZE) -> None:
        self._size = size
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._started = 0
        self._all: list[_Worker] = []
        self._lock = threading.Lock()

    def run(self, args: tuple[str, ...], timeout: float) -> dict[str, Any] | None:
        """``{"rc", "stdout", "stderr"}`` of ``modal ARGS``, or None when it timed out.

        Raises ``WorkerGone`` when the worker died with the command (the caller may retry
        with a subprocess); the dead worker is dropped, the next command starts another.
        """
        worker = self._take()
        try:
            reply = worker.call(args, timeout)
        except WorkerGone:
            self._drop(worker)
            raise
        if reply is None:
            self._drop(worker)
            return None
        self._idle.put(worker)
        return reply

    def _take(self) -> _Worker:
        """An idle worker, or a new one while fewer than ``size`` exist (a dropped one frees a place)."""
        while True:
            with self._lock:
                if self._idle.empty() and self._started < self._size:
                    worker = _Worker()
                    self._started += 1
                    self._all.append(worker)
                    return worker
            try:
                return self._idle.get(timeout=0.2)
            except queue.Empty:
                continue

    def _drop(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._started -= 1
            self._all.remove(worker)

    def close(self) -> None:
        """End every worker (at exit)."""
        with self._lock:
            workers, self._all, self._started = list(self._all), [], 0
        for worker in workers:
            worker.close()


POOL = CliPool()
atexit.register(POOL.close)
