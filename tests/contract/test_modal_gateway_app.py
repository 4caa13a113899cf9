"""The fleet gateway's Modal app, deployed with the real modal client against a recorder as strict as Modal.

After the models, ``deploy_gateway`` publishes ``<prefix>-gateway``: one CPU function (no GPU)
serving an ASGI web endpoint, public unless ``[gateway] modal_proxy_auth``, holding the
proxy-token Secret it calls the models with, the keys Dict created; its bundle routes to the
deployed models' URLs. A missing Secret fails the gateway with the Secret named.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modal_proto import api_pb2

from modelfleet.targets.modal.gateway_bundle import GATEWAY_BUNDLE_ENV, GatewayBundle
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import (
    REPO,
    TIMEOUT_S,
    app_definitions,
    create_workspace,
    drive,
    fleet_copy,
    fleet_env,
)

DEMO = "smollm2-135m"
PROXY_SECRET = "modelfleet-gateway-proxy-token"
SCRIPT = """
import json
from modelfleet.catalog import load_catalog
from modelfleet.settings import FleetSettings
from modelfleet.targets.modal import ModalTarget
from modelfleet.targets.modal.gateway_deploy import deployed_endpoints

settings = FleetSettings()
outcome = ModalTarget(settings).deploy_gateway(tag="commit-1")
endpoints = {k: v.model_dump() for k, v in deployed_endpoints(settings, load_catalog(settings)).items()}
print(json.dumps({"outcome": outcome.__dict__, "endpoints": endpoints}))
"""


@pytest.fixture
def api() -> Iterator[ModalApiRecorder]:
    with ModalApiRecorder() as recorder:
        yield recorder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return fleet_copy(tmp_path, DEMO)


def _deploy_gateway(api: ModalApiRecorder, root: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=fleet_env(api, root),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _gateway_function(api: ModalApiRecorder) -> Any:
    definitions = app_definitions(api, api.apps()["fleet-gateway"].app_id)
    assert list(definitions) == ["gateway"]
    return definitions["gateway"]


def _deployed_fleet(api: ModalApiRecorder, root: Path) -> str:
    create_workspace(api, root)  # the proxy-token Secret with it
    (model,) = drive(api, "deploy", "commit-1", root=root)
    assert model["result"] == "ok", model
    return str(model["url"])


def test_the_gateway_is_a_public_asgi_endpoint_without_gpu_routing_to_the_deployed_models(
    api: ModalApiRecorder, root: Path
) -> None:
    model_url = _deployed_fleet(api, root)

    result = _deploy_gateway(api, root)

    outcome = result["outcome"]
    assert outcome["result"] == "ok", outcome
    assert outcome["url"] == "https://modelfleet-test--fleet-gateway-gateway.modal.run"
    (served,) = result["endpoints"]
    assert (served, result["endpoints"][served]["url"]) == (DEMO, model_url)
    function = _gateway_function(api)
    assert not function.resources.gpu_config.count and not function.resources.gpu_config.gpu_type
    assert function.webhook_config.type == api_pb2.WEBHOOK_TYPE_ASGI_APP
    assert function.webhook_config.requires_proxy_auth is False  # public: its own client keys
    assert len(function.secret_ids) == 1  # the proxy token it calls the models with
    # The keys and usage Dicts every gateway container reads exist before the first one starts.
    assert (api.state.environment, "modelfleet-gateway-keys") in api.state.dict_ids
    assert (api.state.environment, "modelfleet-gateway-usage") in api.state.dict_ids
    # The model endpoint itself stays behind proxy auth.
    server = app_definitions(api, api.apps()[f"fleet-{DEMO}"].app_id)["Server.*"]
    assert server.method_definitions["serve"].webhook_config.requires_proxy_auth is True
    # What every gateway container rebuilds its app from: the bundle baked into the image.
    gateway_app_id = api.apps()["fleet-gateway"].app_id
    commands = [
        c for r in api.requests("ImageGetOrCreate") if r.app_id == gateway_app_id for c in r.image.dockerfile_commands
    ]
    (line,) = [c for c in commands if c.startswith(f"ENV {GATEWAY_BUNDLE_ENV}=")]
    bundle = GatewayBundle.from_env(line.split("=", 1)[1])
    assert bundle.app_name == "fleet-gateway" and bundle.endpoints[DEMO].url == model_url
    assert "vllm" not in " ".join(commands)  # a light image: the gateway runs no model
    assert api.unimplemented == []


def test_modal_proxy_auth_can_stay_in_front_of_the_gateway(api: ModalApiRecorder, root: Path) -> None:
    toml = root / "fleet.toml"
    toml.write_text(toml.read_text() + "\n[gateway]\nmodal_proxy_auth = true\n")
    _deployed_fleet(api, root)

    assert _deploy_gateway(api, root)["outcome"]["result"] == "ok"
    assert _gateway_function(api).webhook_config.requires_proxy_auth is True


def test_a_missing_proxy_token_secret_fails_the_gateway_with_the_secret_named(
    api: ModalApiRecorder, root: Path
) -> None:
    create_workspace(api, root, skip_secrets=(PROXY_SECRET,))
    (model,) = drive(api, "deploy", "commit-1", root=root)
    assert model["result"] == "ok"

    outcome = _deploy_gateway(api, root)["outcome"]

    assert outcome["result"] == "failed"
    assert outcome["detail"] == f"Error: Secret '{PROXY_SECRET}' not found in environment 'main'"
    assert "fleet-gateway" not in api.apps()
