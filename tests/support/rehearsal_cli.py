"""``fleet rehearse MODEL --keep-serving`` as a running process a test can read, smoke through, and stop.

Why: the e2e test runs the real command, as a person would, and keeps its container
serving while the loopback Modal front and ``fleet smoke`` go through it; stopping it
(SIGTERM, as Ctrl-C) must run the container's exit hooks and exit 0.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

SERVING = re.compile(r"keeping (http://\S+) serving")


class RehearsalCli:
    """The running command: its output lines so far, the container URL once serving."""

    def __init__(self, model: str, *, env: dict[str, str], cwd: Path) -> None:
        self.lines: list[str] = []
        self.url = ""
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelfleet", "rehearse", model, "--keep-serving"],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, name="rehearsal-cli", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_serving(self, timeout: float) -> str:
        """The container URL the command prints once its own smoke test passed; raises with the output otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while time.monotonic() < deadline:
                for line in self.lines:
                    found = SERVING.search(line)
                    if found:
                        self.url = found.group(1)
                        return self.url
                if self.process.poll() is not None and not self._reader.is_alive():
                    break
                self._changed.wait(1.0)
        raise AssertionError(f"fleet rehearse did not keep serving (exit {self.process.poll()}):\n{self.output}")

    def stop(self, timeout: float = 120.0) -> int:
        """SIGTERM the command (it stops its container, exit hooks included); its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._reader.join(10)
        return self.process.returncode

    @property
    def output(self) -> str:
        """Everything the command printed so far."""
        with self._changed:
            return "\n".join(self.lines)
