"""``fleet rehearse``'s refusals: one line naming the fix, exit 1, no container started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def rehearse(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env.update({"FLEET_ROOT": str(REPO), "FLEET_STATE_DIR": str(state_dir)})
    return subprocess.run(
        [sys.executable, "-m", "modelfleet", "rehearse", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_unseeded_model_is_refused_with_the_seed_command_and_no_container(tmp_path: Path) -> None:
    done = rehearse("smollm2-135m", state_dir=tmp_path)

    assert done.returncode == 1
    assert "FLEET_TARGET=local fleet seed smollm2-135m" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "rehearsal").exists()


def test_an_unknown_model_is_one_error_line(tmp_path: Path) -> None:
    done = rehearse("no-such-model", state_dir=tmp_path)

    assert done.returncode == 1
    assert "no-such-model" in done.stderr and "Traceback" not in done.stderr
