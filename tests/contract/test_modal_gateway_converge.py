"""Overlapping gateway deploys converge: the last publish routes to every deployed model.

Two deploys of the gateway can overlap (two people's ``fleet deploy``, jobs not given
``--no-gateway``): each reads the deployed models, then publishes, and the last publish wins.
Here the gateway deploy's first read is stale -- it misses a model deployed after it looked,
as when another job's model finishes meanwhile -- and the deploy must notice after publishing
and publish again with both routes. Real modal client, loopback API.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelfleet.targets.modal.gateway_bundle import GATEWAY_BUNDLE_ENV, GatewayBundle
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import REPO, TIMEOUT_S, create_workspace, drive, fleet_copy, fleet_env

MODELS = ("smollm2-135m", "llama31-8b-instruct")
# The first read of the deployed models misses the second model, as a read made just before
# another job deployed it would; every later read is the real one.
SCRIPT = """
import json
from modelfleet.settings import FleetSettings
from modelfleet.targets.modal import ModalTarget
from modelfleet.targets.modal import gateway_deploy

real = gateway_deploy.deployed_endpoints
reads = []

def stale_first(settings, catalog):
    found = real(settings, catalog)
    reads.append(sorted(found))
    if len(reads) == 1:
        found.pop("llama-3.1-8b-instruct")
    return found

gateway_deploy.deployed_endpoints = stale_first
outcome = ModalTarget(FleetSettings()).deploy_gateway(tag="commit-1")
print(json.dumps({"outcome": outcome.__dict__, "reads": len(reads)}))
"""


@pytest.fixture
def api() -> Iterator[ModalApiRecorder]:
    with ModalApiRecorder() as recorder:
        yield recorder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return fleet_copy(tmp_path, *MODELS)


def _bundles(api: ModalApiRecorder) -> list[GatewayBundle]:
    """Every gateway bundle published, in order (one per image the gateway app built)."""
    gateway_app_id = api.apps()["fleet-gateway"].app_id
    lines = [
        c
        for r in api.requests("ImageGetOrCreate")
        if r.app_id == gateway_app_id
        for c in r.image.dockerfile_commands
        if c.startswith(f"ENV {GATEWAY_BUNDLE_ENV}=")
    ]
    return [GatewayBundle.from_env(line.split("=", 1)[1]) for line in lines]


def test_a_gateway_deploy_that_read_the_models_too_early_publishes_again_with_every_route(
    api: ModalApiRecorder, root: Path
) -> None:
    create_workspace(api, root)
    outcomes = drive(api, "deploy", "commit-1", root=root)
    assert {o["model"]: o["result"] for o in outcomes} == dict.fromkeys(MODELS, "ok")

    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=fleet_env(api, root),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcome"]["result"] == "ok", result
    assert result["reads"] == 3  # the stale read, the check after each of the two publishes
    assert result["outcome"]["detail"] == "routes llama-3.1-8b-instruct, smollm2-135m"
    published = _bundles(api)
    assert [sorted(b.endpoints) for b in published] == [
        ["smollm2-135m"],
        ["llama-3.1-8b-instruct", "smollm2-135m"],
    ]
