"""Shared by the ModalTarget contract tests: run a target verb in a subprocess against a recorder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .modal_api import ModalApiRecorder

REPO = Path(__file__).resolve().parents[2]  # tests/support/ -> repo root
TIMEOUT_S = 120


def fleet_env(api: ModalApiRecorder, root: Path = REPO, **extra: str) -> dict[str, str]:
    """The recorder's client settings plus a modal-target fleet rooted at ``root``."""
    env = api.subprocess_env()
    for key in [k for k in env if k.startswith("FLEET_")]:
        del env[key]
    env.update({"FLEET_TARGET": "modal", "FLEET_ROOT": str(root), **extra})
    return env


def run_driver(
    api: ModalApiRecorder, *args: str, root: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m tests.support.modal_api_driver ARGS`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "tests.support.modal_api_driver", *args],
        env=env or fleet_env(api, root),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def drive(api: ModalApiRecorder, *args: str, root: Path = REPO) -> Any:
    """Run a verb that must succeed; its JSON result."""
    done = run_driver(api, *args, root=root)
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])
