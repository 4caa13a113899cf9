"""A real local fleet for end-to-end tests: the demo model up through the real ``fleet`` CLI.

State goes to a temporary folder (never the developer's ``.fleet``); the weights volume
is the test cache the ``demo_checkpoint`` fixture seeds, so only the first run converts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelfleet.runtime.ports import free_port

DEMO = "smollm2-135m"


@dataclass
class LocalFleet:
    """How to reach and drive the running test fleet."""

    env: dict[str, str]
    state_dir: Path
    url: str

    def fleet(self, *args: str, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
        """Run the real CLI against this fleet."""
        return subprocess.run(
            [sys.executable, "-m", "modelfleet", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ensure_up(self) -> None:
        """``fleet up`` the demo model: a no-op while it runs, a fresh start after a test stopped it."""
        up = self.fleet("up", DEMO)
        assert up.returncode == 0, f"fleet up failed:\n{up.stdout}\n{up.stderr}"
        # The model's edge URL, from the outcome table (the gateway's line comes after it).
        match = re.search(r"http://127\.0\.0\.1:\d+", up.stdout.split("gateway:")[0])
        # A running model reports "already running" instead of its URL, which is then unchanged.
        assert match or self.url, up.stdout
        self.url = match.group(0) if match else self.url

    def create_token(self, name: str) -> tuple[str, str]:
        """A fresh key/secret pair through ``fleet token create``."""
        done = self.fleet("token", "create", name)
        assert done.returncode == 0, done.stderr
        key = re.search(r"Modal-Key: (\S+)", done.stdout)
        secret = re.search(r"Modal-Secret: (\S+)", done.stdout)
        assert key and secret, done.stdout
        return key.group(1), secret.group(1)


@pytest.fixture(scope="session")
def local_fleet(
    fleet_root: Path, demo_checkpoint: Path, test_volume_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalFleet]:
    """The demo model running under the local target for the whole session; stopped at the end."""
    state_dir = tmp_path_factory.mktemp("fleet-state")
    volumes = state_dir / "volumes"
    volumes.mkdir()
    (volumes / test_volume_root.name).symlink_to(test_volume_root, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "MODAL_"))}
    env.update(
        FLEET_ROOT=str(fleet_root),
        FLEET_STATE_DIR=str(state_dir),
        FLEET_LOCAL_BASE_PORT=str(free_port()),
        # The fleet's gateway on a port of its own: never a developer's (fleet.toml's [gateway] port).
        FLEET_GATEWAY__PORT=str(free_port()),
        PYTHONPATH=str(fleet_root / "platform"),
        COLUMNS="200",
    )
    fleet = LocalFleet(env=env, state_dir=state_dir, url="")
    fleet.ensure_up()
    try:
        yield fleet
    finally:
        fleet.fleet("down", timeout=120)


@pytest.fixture
def running_fleet(local_fleet: LocalFleet) -> LocalFleet:
    """The session's fleet, running: a test that stopped it (``fleet down``) does not break the ones after it.

    So the tests pass in any order and alone (``-k``, ``-p randomly``); in file order the
    stopping test is last and nothing restarts.
    """
    local_fleet.ensure_up()
    return local_fleet
