"""The network namespace the local target serves blocked models from, and the probe that checks it.

Real kernel calls throughout: ``unshare`` and ``setns`` need CAP_SYS_ADMIN (root here and in
CI); the tests that need it are skipped with the reason elsewhere. "Unprivileged" is made
for real too: ``setpriv`` drops CAP_SYS_ADMIN from a child's bounding set, so the kernel
refuses the namespace exactly as it would for a user without the capability.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelfleet.catalog import load_catalog
from modelfleet.runtime.engine import Engine
from modelfleet.runtime.netns import EgressListeners, namespace_id, namespace_refusal, probe_egress
from modelfleet.settings import FleetSettings
from modelfleet.targets.local.egress import verify_isolation
from modelfleet.targets.local.supervisor import Supervisor
from tests.unit.conftest import MINIMAL_MODEL

REFUSAL = namespace_refusal()
needs_namespaces = pytest.mark.skipif(REFUSAL is not None, reason=f"network namespaces refused here: {REFUSAL}")
needs_setpriv = pytest.mark.skipif(
    shutil.which("setpriv") is None or os.geteuid() != 0 or REFUSAL is not None,
    reason="dropping CAP_SYS_ADMIN for a child needs root, namespaces and util-linux's setpriv",
)
# A child without CAP_SYS_ADMIN: the kernel then refuses unshare(CLONE_NEWNET).
UNPRIVILEGED = ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--"]


@pytest.fixture
def isolated_sleeper() -> Iterator[int]:
    """A process in a namespace of its own (``guardian``'s pre-exec step); its pid."""
    from modelfleet.runtime.netns import isolate_network

    process = subprocess.Popen(["sleep", "60"], preexec_fn=isolate_network)
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


@needs_namespaces
def test_a_probe_inside_the_namespace_reaches_none_of_the_fleets_listeners(isolated_sleeper: int) -> None:
    assert namespace_id(isolated_sleeper) != namespace_id(os.getpid())
    with EgressListeners() as listeners:
        result = probe_egress(isolated_sleeper, listeners)
    assert result.isolated, result.summary()
    assert result.namespace == namespace_id(isolated_sleeper)
    loopback = next(o for a, o in result.outcomes.items() if a.startswith("127.0.0.1:"))
    assert loopback.startswith("ECONNREFUSED")  # the namespace's own loopback, with nothing on that port
    others = [o for a, o in result.outcomes.items() if not a.startswith("127.0.0.1:")]
    assert all(o.startswith("ENETUNREACH") for o in others), result.summary()


@needs_namespaces
def test_the_same_probe_from_this_machines_network_reaches_every_listener() -> None:
    # The control: without isolation the probe must fail the check, or it proves nothing.
    with EgressListeners() as listeners:
        result = probe_egress(os.getpid(), listeners)
    assert set(result.outcomes.values()) == {"reached"}
    assert not result.isolated


@needs_setpriv
def test_without_cap_sys_admin_the_namespace_is_refused_with_the_kernels_reason() -> None:
    code = "from modelfleet.runtime.netns import namespace_refusal; print(namespace_refusal())"
    done = subprocess.run([*UNPRIVILEGED, sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "unshare(CLONE_NEWNET) refused: Operation not permitted"


_LOCAL = "\n[local]\nenabled = true\n"


def _supervisor_egress(fleet_repo: Path, model: str) -> dict[str, object]:
    """What an unprivileged supervisor decides for ``model`` before it starts anything."""
    code = (
        "import json, sys\n"
        "from modelfleet.catalog import load_catalog\n"
        "from modelfleet.settings import FleetSettings\n"
        "from modelfleet.targets.local.supervisor import Supervisor\n"
        "settings = FleetSettings()\n"
        f"supervisor = Supervisor(settings, load_catalog(settings).require({model!r}), 1)\n"
        "refused = supervisor.refuse_without_namespace()\n"
        "print(json.dumps({'refused': refused, 'egress': supervisor.run.egress, 'state': supervisor.run.state,"
        " 'error': supervisor.run.last_error}))\n"
    )
    env = {**os.environ, "FLEET_ROOT": str(fleet_repo)}
    done = subprocess.run([*UNPRIVILEGED, sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@needs_setpriv
def test_an_unprivileged_supervisor_refuses_a_blocked_model_and_warns_for_an_allowed_one(
    write_model: Callable[[str, str], Path], fleet_repo: Path
) -> None:
    write_model("blocked", MINIMAL_MODEL + _LOCAL)
    write_model("allowed", MINIMAL_MODEL + _LOCAL + '\n[privacy]\negress = "allowed"\n')

    blocked = _supervisor_egress(fleet_repo, "blocked")
    assert blocked["refused"] is True and blocked["state"] == "failed"
    assert str(blocked["error"]).startswith(f"{fleet_repo}/models/blocked/model.toml: privacy.egress: ")
    assert "Operation not permitted" in str(blocked["error"]) and 'egress = "allowed"' in str(blocked["error"])

    allowed = _supervisor_egress(fleet_repo, "allowed")
    assert allowed["refused"] is False and allowed["error"] == ""
    assert str(allowed["egress"]).startswith("allowed (warning: vLLM shares this machine's network")


@needs_setpriv
def test_an_unprivileged_fleet_up_of_a_blocked_model_fails_at_once_with_the_fix(
    write_model: Callable[[str, str], Path], fleet_repo: Path
) -> None:
    write_model("blocked", MINIMAL_MODEL + _LOCAL)
    env = {**os.environ, "FLEET_ROOT": str(fleet_repo), "FLEET_STATE_DIR": str(fleet_repo / ".fleet"), "COLUMNS": "400"}
    done = subprocess.run(
        [*UNPRIVILEGED, sys.executable, "-m", "modelfleet", "up", "blocked"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode != 0
    output = " ".join((done.stdout + done.stderr).split())
    assert "privacy.egress: 'blocked' runs vLLM in a network namespace of its own" in output
    # Refused before anything was seeded or started.
    assert not (fleet_repo / ".fleet" / "runs").exists()
    assert not (fleet_repo / ".fleet" / "volumes").exists() or not any((fleet_repo / ".fleet" / "volumes").iterdir())


def _sleeping_engine(tmp_path: Path, *, isolate: bool) -> Engine:
    """A real Engine (guardian and all) whose "server" is ``sleep``: what the isolation check inspects."""
    socket_path = tmp_path / "engine.sock"
    return Engine(
        ["sleep", "60"], env={}, port=0, log_path=tmp_path / "engine.log", socket_path=socket_path, isolate=isolate
    )


@needs_namespaces
def test_an_isolated_engine_passes_the_check_and_a_shared_one_fails_it(tmp_path: Path) -> None:
    with _sleeping_engine(tmp_path, isolate=True) as isolated:
        isolated.start()
        ok, probe = verify_isolation(isolated)
        assert ok, probe
        assert probe.startswith(f"probe inside {namespace_id(isolated.pid or 0)}: 127.0.0.1:")
    with _sleeping_engine(tmp_path, isolate=False) as shared:
        shared.start()
        ok, probe = verify_isolation(shared)
        assert not ok
        assert "this machine's network is" in probe


@needs_namespaces
def test_a_supervisor_stops_serving_an_engine_whose_isolation_it_cannot_show(
    write_model: Callable[[str, str], Path], fleet_repo: Path, tmp_path: Path
) -> None:
    write_model("blocked", MINIMAL_MODEL + _LOCAL)
    settings = FleetSettings()
    supervisor = Supervisor(settings, load_catalog(settings).require("blocked"), 1)
    assert supervisor.isolate  # blocked by default
    supervisor.engine = _sleeping_engine(tmp_path, isolate=False)  # as if the namespace had not been made
    with supervisor.engine:
        supervisor.engine.start()
        assert not supervisor.check_isolation()
    assert supervisor.run.egress == "blocked (NOT verified)"
    assert supervisor.run.last_error.startswith("privacy.egress = 'blocked' could not be verified")
