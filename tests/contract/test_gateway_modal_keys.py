"""The gateway's Modal key store: the real modal client against the loopback API's Dicts.

`fleet keys create/revoke` on the Modal target write a modal.Dict; two processes standing
in for two gateway containers read it with the Authenticator, and both refuse a revoked
key within 5 seconds. The Dict holds hashes only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.modal_api import ModalApiRecorder
from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
DICT = "modelfleet-gateway-keys"
# A gateway container: authenticate until the key works (then say so), then until it is refused.
CONTAINER = """
import asyncio, sys, time
from pathlib import Path
from modelfleet.gateway.auth import AuthFailure, Authenticator
from modelfleet.gateway.key_stores import ModalKeyStore

key, ready, refused = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
auth = Authenticator(ModalKeyStore("modelfleet-gateway-keys", "main"), ttl=2.0)

async def main() -> None:
    while True:
        try:
            await auth.authenticate("Bearer " + key)
            ready.write_text("ok")
        except AuthFailure as failure:
            if ready.exists():
                refused.write_text(failure.code)
                return
        await asyncio.sleep(0.1)

asyncio.run(main())
"""


@pytest.fixture
def api() -> Iterator[ModalApiRecorder]:
    with ModalApiRecorder() as recorder:
        yield recorder


@pytest.fixture
def modal_fleet(tmp_path: Path, api: ModalApiRecorder) -> dict[str, str]:
    """Environment of a fleet on the Modal target, pointed at the recorder."""
    shutil.copy(REPO_ROOT / "fleet.toml", tmp_path / "fleet.toml")
    (tmp_path / "models").mkdir()
    env = api.subprocess_env()
    env.update(
        FLEET_ROOT=str(tmp_path),
        FLEET_TARGET="modal",
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "platform"), str(REPO_ROOT)]),
    )
    return env


def fleet(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "modelfleet", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result


def test_two_containers_reading_the_dict_refuse_a_revoked_key_within_five_seconds(
    api: ModalApiRecorder, modal_fleet: dict[str, str], tmp_path: Path
) -> None:
    created = json.loads(fleet(modal_fleet, "keys", "create", "alice", "--rpm", "5", "--format", "json").stdout)
    stored = api.dict_contents(DICT)
    assert len(stored) == 1
    secret = created["key"].rsplit("-", 1)[1]
    assert all(secret.encode() not in value for value in stored.values())
    containers = []
    for index in range(2):
        ready, refused = tmp_path / f"ready-{index}", tmp_path / f"refused-{index}"
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CONTAINER), created["key"], str(ready), str(refused)],
            env=modal_fleet,
        )
        containers.append((process, ready, refused))
    try:
        assert wait_until(lambda: all(ready.exists() for _, ready, _ in containers), 60)
        fleet(modal_fleet, "keys", "revoke", "alice")
        # Both re-read the Dict at most every 2 s: refused within 5 s of the revoke returning.
        assert wait_until(lambda: all(refused.exists() for _, _, refused in containers), 5.0)
        assert {refused.read_text() for _, _, refused in containers} == {"key_revoked"}
    finally:
        for process, _, _ in containers:
            process.kill()
            process.wait(timeout=10)
    listed = json.loads(fleet(modal_fleet, "keys", "list", "--format", "json").stdout)
    assert [(k["name"], bool(k["revoked"])) for k in listed] == [("alice", True)]
    assert api.unimplemented == []
