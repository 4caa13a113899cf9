"""The parent's side of ``launcher.py``: start vLLM preloaded, wait for the imports, release it.

``Engine`` runs the launcher like any vLLM command (same guardian, log, /health,
stop), so a preloaded engine differs only in when vLLM really starts: at
``release``, after a memory snapshot's restore.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from modelfleet.files import write_atomic
from modelfleet.runtime.command import MODULE_ENTRY
from modelfleet.runtime.engine import Engine, EngineStartError
from modelfleet.runtime.launcher import GO_FILE, READY_FILE

LAUNCHER = Path(__file__).with_name("launcher.py")


def launcher_entry(control: Path) -> tuple[str, ...]:
    """The argv prefix that runs vLLM's server through the launcher (``vllm_command(entry=...)``)."""
    server_module = MODULE_ENTRY[-1]
    return (sys.executable, str(LAUNCHER), str(control), server_module)


def reset_control(control: Path) -> None:
    """An empty control folder: a stale ``go`` would release the next launcher at once."""
    shutil.rmtree(control, ignore_errors=True)
    control.mkdir(parents=True)


def wait_preloaded(engine: Engine, control: Path, timeout: float) -> dict[str, object]:
    """Wait until the launcher has imported everything; its report. Raises if it exits first."""
    ready = control / READY_FILE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready.exists():
            report: dict[str, object] = json.loads(ready.read_text())
            return report
        code = engine.returncode
        if code is not None:
            raise EngineStartError(f"the vLLM launcher exited with code {code} while importing:\n{engine.log_tail()}")
        if engine.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                engine.process.wait(timeout=0.1)
    raise EngineStartError(f"the vLLM launcher had not finished its imports after {timeout:.0f}s:\n{engine.log_tail()}")


def release(control: Path) -> None:
    """Tell the launcher to run vLLM now."""
    write_atomic(control / GO_FILE, json.dumps({"released_at": time.time()}))
