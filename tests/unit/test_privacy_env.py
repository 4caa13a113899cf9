"""Telemetry off and the hub offline in every serving process of every model, on both targets.

Read from what each target renders, not from a constant: the environment the local
supervisor's engine starts with, and on Modal the serving image's environment plus the
environment the container's engine adds (``ServingRuntime``'s engine). The seed image may
reach the hub (it downloads the weights) but keeps telemetry off too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfleet.catalog import load_catalog
from modelfleet.runtime.ports import free_port
from modelfleet.settings import FleetSettings
from modelfleet.spec.model import SERVING_PRIVACY_ENV
from modelfleet.targets.local.supervisor import Supervisor
from modelfleet.targets.modal.bundle import make_bundle
from modelfleet.targets.modal.image import serving_env
from modelfleet.targets.modal.serving import ServingRuntime
from tests.unit.conftest import MINIMAL_MODEL, REPO_ROOT

EXAMPLE_MODELS = ["llama31-8b-instruct", "llama33-70b-instruct", "qwen25-vl-7b-instruct", "smollm2-135m"]
EXPECTED = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1"}


def test_the_privacy_settings_are_the_ones_the_issue_asks_for() -> None:
    assert SERVING_PRIVACY_ENV == EXPECTED


@pytest.mark.parametrize("name", EXAMPLE_MODELS)
def test_the_local_engine_of_every_model_starts_with_telemetry_off_and_the_hub_offline(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_ROOT", str(REPO_ROOT))
    monkeypatch.delenv("FLEET_TARGET", raising=False)
    settings = FleetSettings()
    engine = Supervisor(settings, load_catalog(settings).require(name), free_port()).engine
    assert {key: engine.env[key] for key in EXPECTED} == EXPECTED


@pytest.mark.parametrize("name", EXAMPLE_MODELS)
def test_every_modal_serving_container_has_telemetry_off_and_the_hub_offline(name: str) -> None:
    settings = FleetSettings(root=REPO_ROOT)
    catalog = load_catalog(settings)
    bundle = make_bundle(catalog.require(name), catalog, settings)
    image_env = serving_env(bundle)
    engine_env = ServingRuntime(bundle)._new_engine().env
    assert {key: image_env[key] for key in EXPECTED} == EXPECTED
    assert {key: engine_env[key] for key in EXPECTED} == EXPECTED


def test_a_model_cannot_turn_telemetry_back_on(fleet_repo: Path) -> None:
    models = fleet_repo / "models" / "tiny"
    models.mkdir(parents=True)
    (models / "model.toml").write_text(MINIMAL_MODEL + '\n[image]\nenv = { VLLM_NO_USAGE_STATS = "0" }\n')
    catalog = load_catalog(FleetSettings())
    (problem,) = [p for p in catalog.problems if p.level == "error"]
    assert problem.field == "image.env"
    assert "VLLM_NO_USAGE_STATS is set by the platform on every serving process" in problem.message
    assert "remove it from image.env" in problem.message
