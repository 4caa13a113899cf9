"""`fleet snapshot` and `fleet smoke` for every example model, against Modal on loopback with a real vLLM.

The four models are deployed with the real modal client to the loopback control plane;
their endpoints are served by the loopback web front (``ModalWebFront``): proxy auth,
containers that boot on the first request and register with the control plane (so the
snapshot job's ``modal container stop`` really stops them), and ``303 See Other`` when a
request outlasts the request limit -- scaled down here, with a cold boot (which builds
the snapshot) longer than the limit, as a large model's is on Modal. Inside each
container runs the project's edge; behind it the session's vLLM, which answers to every
example model's served name. The commands run as CI runs them, minting their own proxy
token (no ``FLEET_PROXY_TOKEN_*`` set).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.contract.test_modal_front import mint_token
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import REPO, create_workspace, drive, run_fleet
from tests.support.modal_web_front import FrontSettings, ModalWebFront

from modelfleet.runtime.engine import Engine

pytestmark = pytest.mark.e2e

ALL = ["llama31-8b-instruct", "llama33-70b-instruct", "qwen25-vl-7b-instruct", "smollm2-135m"]
DEMO = "smollm2-135m"
# Modal's 150 s request limit and a cold boot of minutes, scaled down: the boot outlasts the limit.
REQUEST_LIMIT = 2.0
COLD_BOOT = 3.5
RESTORE = 0.5


@dataclass
class ModalFleet:
    """The deployed fleet: control plane, front, and where `fleet` keeps its reports."""

    api: ModalApiRecorder
    front: ModalWebFront
    root: Path
    state_dir: Path

    def fleet(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The real CLI as CI runs it, against this control plane."""
        return run_fleet(self.api, *args, root=self.root, timeout=600, FLEET_STATE_DIR=str(self.state_dir))

    def report(self, model: str) -> dict[str, object]:
        done = self.fleet("report", model, "--json")
        assert done.returncode == 0, done.stderr
        (entry,) = json.loads(done.stdout)["models"]
        return dict(entry)


def fleet_root(tmp: Path) -> Path:
    """A copy of the fleet's declarations (models, volumes, fleet.toml) that a test may change."""
    root = tmp / "fleet"
    shutil.copytree(REPO / "models", root / "models")
    shutil.copytree(REPO / "volumes", root / "volumes")
    shutil.copy(REPO / "fleet.toml", root / "fleet.toml")
    return root


@pytest.fixture(scope="module")
def modal_fleet(demo_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModalFleet]:
    """All four example models deployed once for the module, behind the front."""
    tmp = tmp_path_factory.mktemp("modal-fleet")
    settings = FrontSettings(
        upstream_url=demo_engine.url, request_limit=REQUEST_LIMIT, boot_seconds=COLD_BOOT, restore_seconds=RESTORE
    )
    with ModalApiRecorder() as api, ModalWebFront(api, settings) as front:
        create_workspace(api)
        fleet = ModalFleet(api, front, REPO, tmp / "state")
        outcomes = drive(api, "deploy", "commit-1")
        assert {o["model"]: o["result"] for o in outcomes} == dict.fromkeys(ALL, "ok"), outcomes
        yield fleet


@pytest.mark.parametrize("model", ALL)
def test_snapshot_then_smoke_pass_through_a_303_for_every_example_model(modal_fleet: ModalFleet, model: str) -> None:
    url = drive(modal_fleet.api, "endpoint", model)
    assert url in modal_fleet.front.endpoints

    snapshot = modal_fleet.fleet("snapshot", model)
    assert snapshot.returncode == 0, f"{snapshot.stdout}\n{snapshot.stderr}"
    # The cold boot that built the snapshot outlasted the request limit: Modal answered 303.
    assert f"{url}/v1/chat/completions" in modal_fleet.front.redirects
    report = modal_fleet.report(model)
    assert report["snapshot"] == "restored", report
    assert [b.kind for b in modal_fleet.front.boots if b.app_name == f"fleet-{model}"][-2:] == ["cold", "restore"]

    smoke = modal_fleet.fleet("smoke", model)
    assert smoke.returncode == 0, f"{smoke.stdout}\n{smoke.stderr}"
    assert modal_fleet.report(model)["smoke"] == "passed"
    # Each command minted its own token and deleted it.
    assert len(modal_fleet.api.requests("WebhookTokenCreate")) >= 2
    assert not modal_fleet.api.proxy_tokens


def test_a_failed_smoke_rolls_back_and_the_state_names_the_version_the_front_serves(
    demo_engine: Engine, tmp_path: Path
) -> None:
    root = fleet_root(tmp_path)
    settings = FrontSettings(upstream_url=demo_engine.url, request_limit=REQUEST_LIMIT, boot_seconds=RESTORE)
    with ModalApiRecorder() as api, ModalWebFront(api, settings) as front:
        create_workspace(api, root)
        fleet = ModalFleet(api, front, root, tmp_path / "state")
        assert drive(api, "deploy", "commit-good", DEMO, root=root)[0]["version"] == "v1"
        # v2 serves a name vLLM does not know: its smoke test fails.
        toml = root / "models" / DEMO / "model.toml"
        toml.write_text(toml.read_text().replace(f'served_model_name = "{DEMO}"', 'served_model_name = "not-served"'))
        assert drive(api, "deploy", "commit-bad", DEMO, root=root)[0]["version"] == "v2"

        done = fleet.fleet("smoke", DEMO, "--rollback-on-failure")

        assert done.returncode == 1, done.stdout
        assert "models lists the served name" in done.stderr
        state = drive(api, "state", root=root)["models"][DEMO]
        live = api.apps()[f"fleet-{DEMO}"].version
        assert live == 3 and state["version"] == f"v{live}"  # the rollback is a new version ...
        assert state["tag"] == "commit-good"  # ... serving the good one's definition
        assert state["spec"]["weights"]["served_model_name"] == DEMO
        # The front serves that version: a request now boots a container of it.
        credentials = mint_token(api, api.state.environment)
        answer = httpx.get(
            f"{drive(api, 'endpoint', DEMO, root=root)}/health", headers=credentials.headers(), timeout=60
        )
        assert answer.status_code == 200
        assert front.boots[-1].version == live
