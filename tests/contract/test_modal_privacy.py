"""What Modal receives for ``[privacy]``: the real modal client deploys, the loopback API records.

Every example model declares no ``[privacy]`` and so blocks egress (the default): its
serving class must reach Modal with ``block_network`` on every GPU option, served by the
classic web endpoint (a Server cannot carry the flag); ``restrict_modal_access``
(``untrusted`` on the wire) stays off, since the class commits its compile-cache volume
(``targets/modal/app.py``, ``cls_options``). Each serving image carries the privacy
environment. Seeding, the one job that downloads, keeps its network and turns only the
hub back on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from modal_proto import api_pb2

from modelfleet.spec.model import SERVING_PRIVACY_ENV
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import app_definitions, create_workspace, drive, ranked_functions, run_driver

EXAMPLE_MODELS = ["llama31-8b-instruct", "llama33-70b-instruct", "qwen25-vl-7b-instruct", "smollm2-135m"]


@pytest.fixture(scope="module")
def fleet() -> Iterator[ModalApiRecorder]:
    """The example fleet deployed as declared (no [privacy] anywhere: blocked by default)."""
    with ModalApiRecorder() as api:
        create_workspace(api)
        outcomes = drive(api, "deploy", "commit-1")
        assert {o["model"]: o["result"] for o in outcomes} == dict.fromkeys(EXAMPLE_MODELS, "ok"), outcomes
        yield api


def _image_commands(api: ModalApiRecorder, app_id: str) -> list[str]:
    return [
        c for req in api.requests("ImageGetOrCreate") if req.app_id == app_id for c in req.image.dockerfile_commands
    ]


@pytest.mark.parametrize("name", EXAMPLE_MODELS)
def test_every_example_model_is_served_with_modals_network_block(fleet: ModalApiRecorder, name: str) -> None:
    definitions = app_definitions(fleet, fleet.apps()[f"fleet-{name}"].app_id)
    assert set(definitions) == {"Server.*"}  # the classic class: a Server could not block the network
    cls = definitions["Server.*"]
    assert cls.method_definitions["serve"].webhook_config.type == api_pb2.WEBHOOK_TYPE_WEB_SERVER
    ranked = ranked_functions(cls)
    assert ranked and all(fn.block_network for fn in ranked)
    assert not any(fn.untrusted for fn in ranked)


@pytest.mark.parametrize("name", EXAMPLE_MODELS)
def test_every_serving_image_turns_telemetry_off_and_the_hub_offline(fleet: ModalApiRecorder, name: str) -> None:
    commands = _image_commands(fleet, fleet.apps()[f"fleet-{name}"].app_id)
    for key, value in SERVING_PRIVACY_ENV.items():
        assert f"ENV {key}={value}" in commands, key


def test_seeding_keeps_its_network_and_its_telemetry_off() -> None:
    with ModalApiRecorder() as api:
        create_workspace(api)
        done = run_driver(api, "seed", "smollm2-135m")
        (outcome,) = json.loads(done.stdout.strip().splitlines()[-1])
        assert outcome["model"] == "smollm2-135m"
        (app_id,) = api.all_apps()
        functions: dict[str, Any] = app_definitions(api, app_id)
        (seed,) = ranked_functions(functions["seed"])
        assert not seed.block_network and not seed.untrusted
        commands = _image_commands(api, app_id)
    assert "ENV HF_HUB_OFFLINE=0" in commands  # the one image that may reach the hub
    for key in ("VLLM_NO_USAGE_STATS", "DO_NOT_TRACK", "HF_HUB_DISABLE_TELEMETRY"):
        assert f"ENV {key}=1" in commands, key
