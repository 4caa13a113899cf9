"""Every example model deployed through ModalTarget with the REAL modal client, against the recorder.

Why: this is what Modal would receive from `fleet deploy-all` -- one app per model with
the right name and tag, GPUs with fallbacks, autoscaler and concurrency settings,
snapshot flags, proxy auth on the web endpoint, volumes read-only / read-write,
secrets, and image layers with every version pinned. One deploy of the whole fleet
(in a subprocess, as CI runs it) feeds all the per-model assertions.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import modal
import pytest
from modal_proto import api_pb2

from modelfleet.catalog import Catalog, CatalogModel, load_catalog
from modelfleet.settings import FleetSettings
from modelfleet.targets.modal.image import RUNTIME_PACKAGES
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import REPO, app_definitions, create_workspace, drive, fleet_env, ranked_functions

EXAMPLE_MODELS = ["llama31-8b-instruct", "llama33-70b-instruct", "qwen25-vl-7b-instruct", "smollm2-135m"]


@dataclass
class FleetDeploy:
    api: ModalApiRecorder
    catalog: Catalog
    outcomes: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def fleet() -> Iterator[FleetDeploy]:
    """The whole example fleet deployed once, tag ``commit-1``."""
    with ModalApiRecorder() as api:
        create_workspace(api)
        outcomes = drive(api, "deploy", "commit-1")
        catalog = load_catalog(FleetSettings(root=REPO))
        yield FleetDeploy(api, catalog, {o["model"]: o for o in outcomes})


def _app_id(api: ModalApiRecorder, app_name: str) -> str:
    return api.apps()[app_name].app_id


def _definitions(api: ModalApiRecorder, app_name: str) -> dict[str, Any]:
    """Function name -> definition (FunctionData or Function) of one app's FunctionCreate requests."""
    return app_definitions(api, _app_id(api, app_name))


_ranked = ranked_functions


def _secret_names(api: ModalApiRecorder, ids: Any) -> set[str]:
    by_id = {sid: name for (_env, name), (sid, _values) in api.state.secrets.items()}
    return {by_id[i] for i in ids}


def _mounts(api: ModalApiRecorder, fn: Any) -> dict[str, tuple[str, bool]]:
    by_id = {vid: name for (_env, name), (vid, _version) in api.state.volumes.items()}
    return {m.mount_path: (by_id[m.volume_id], m.read_only) for m in fn.volume_mounts}


def _image_commands(api: ModalApiRecorder, app_name: str) -> list[str]:
    app_id = _app_id(api, app_name)
    return [
        c for req in api.requests("ImageGetOrCreate") if req.app_id == app_id for c in req.image.dockerfile_commands
    ]


def test_the_pinned_modal_client_is_the_one_these_tests_speak_to() -> None:
    # The recorder answers the RPCs modal 1.6.4 makes; an upgrade must re-check this suite.
    assert modal.__version__ == "1.6.4"


def test_every_example_model_is_deployed_as_its_own_app_with_the_tag(fleet: FleetDeploy) -> None:
    assert sorted(fleet.catalog.models) == EXAMPLE_MODELS
    assert {m: o["result"] for m, o in fleet.outcomes.items()} == dict.fromkeys(EXAMPLE_MODELS, "ok")
    publishes = {req.name: req.deployment_tag for req in fleet.api.requests("AppPublish")}
    assert publishes == {f"fleet-{m}": "commit-1" for m in EXAMPLE_MODELS}
    for model, outcome in fleet.outcomes.items():
        assert outcome["app"] == f"fleet-{model}"
        assert outcome["version"] == "v1"
        assert outcome["url"] == f"https://modelfleet-test--fleet-{model}-server-serve.modal.run"
    assert fleet.api.unimplemented == []


def test_the_deploy_speaks_the_rpc_sequence_of_modal_1_6_4(fleet: FleetDeploy) -> None:
    app_id = _app_id(fleet.api, "fleet-smollm2-135m")
    names = [name for name, req in fleet.api.calls if getattr(req, "app_id", None) == app_id]
    relevant = [n for n in names if n in ("FunctionPrecreate", "FunctionCreate", "ClassCreate", "AppPublish")]
    # One function (the serving class; seeding is an app of its own): precreated, created, published.
    assert relevant[:1] == ["FunctionPrecreate"]
    assert sorted(relevant[1:3]) == ["ClassCreate", "FunctionCreate"]
    assert relevant[3:] == ["AppPublish"]
    # AppCreateRequest has no app_id (it answers with the id), so find it by the name it
    # carries as description (modal 1.6.4 runner.py, _init_local_app_from_name -> _init_local_app_new).
    created = [
        i for i, (n, req) in enumerate(fleet.api.calls) if n == "AppCreate" and req.description == "fleet-smollm2-135m"
    ]
    first_use = next(i for i, (_, req) in enumerate(fleet.api.calls) if getattr(req, "app_id", None) == app_id)
    assert len(created) == 1 and created[0] < first_use


@pytest.mark.parametrize("name", EXAMPLE_MODELS)
def test_gpus_with_fallbacks_scaling_concurrency_and_snapshots(fleet: FleetDeploy, name: str) -> None:
    spec = fleet.catalog.require(name).spec
    server = _definitions(fleet.api, f"fleet-{name}")["Server.*"]
    ranked = _ranked(server)

    gpus = [(f.resources.gpu_config.gpu_type, f.resources.gpu_config.count) for f in ranked]
    assert gpus == spec.gpu.options()
    scaling = spec.scaling
    autoscaler = server.autoscaler_settings
    assert (
        autoscaler.min_containers,
        autoscaler.max_containers,
        autoscaler.buffer_containers,
        autoscaler.scaledown_window,
    ) == (scaling.min_containers, scaling.max_containers, scaling.buffer_containers, scaling.scaledown_window)
    for fn in ranked:
        assert (fn.max_concurrent_inputs, fn.target_concurrent_inputs) == (
            scaling.max_concurrent_inputs,
            scaling.target_concurrent_inputs,
        )
        assert (fn.timeout_secs, fn.startup_timeout_secs) == (scaling.timeout, scaling.startup_timeout)
        assert fn.checkpointing_enabled is True
    # A GPU snapshot only where the model declares one (the multi-GPU 70B may not: spec lints).
    gpu_snapshot = {"enable_gpu_snapshot": "True"} if spec.snapshot.gpu_snapshot else {}
    assert dict(server.experimental_options) == gpu_snapshot


def test_the_70b_model_asks_for_four_h100s_then_four_a100s_for_long_enough(fleet: FleetDeploy) -> None:
    server = _definitions(fleet.api, "fleet-llama33-70b-instruct")["Server.*"]
    ranked = _ranked(server)
    assert [(f.resources.gpu_config.gpu_type, f.resources.gpu_config.count) for f in ranked] == [
        ("H100", 4),
        ("A100-80GB", 4),
    ]
    assert ranked[0].startup_timeout_secs == 1800


@pytest.mark.parametrize("name", EXAMPLE_MODELS)
def test_web_endpoint_serves_the_edge_behind_proxy_auth(fleet: FleetDeploy, name: str) -> None:
    server = _definitions(fleet.api, f"fleet-{name}")["Server.*"]
    hook = server.method_definitions["serve"].webhook_config
    assert hook.type == api_pb2.WEBHOOK_TYPE_WEB_SERVER
    assert (hook.web_server_port, hook.requires_proxy_auth) == (8000, True)
    assert hook.web_server_startup_timeout >= 60
    # Every example scales to zero, so the classic endpoint serves it (targets/modal/primitive.py):
    # a Modal Server would answer 503 to a request that meets no running container.
    assert not server.is_server and not server.http_config.port


@pytest.mark.parametrize("name", EXAMPLE_MODELS)
def test_weights_are_read_only_for_serving_and_writable_only_for_seeding(fleet: FleetDeploy, name: str) -> None:
    # The seed app (its own app, tests/contract/test_modal_seed_app.py) is the one writer.
    definitions = _definitions(fleet.api, f"fleet-{name}")
    assert set(definitions) == {"Server.*"}
    for fn in _ranked(definitions["Server.*"]):
        assert _mounts(fleet.api, fn) == {
            "/weights": ("modelfleet-weights", True),
            "/root/.cache/vllm": ("modelfleet-vllm-cache", False),
        }
    volume_versions = {req.version for req in fleet.api.requests("VolumeGetOrCreate")}
    assert volume_versions == {api_pb2.VOLUME_FS_VERSION_V2}


@pytest.mark.parametrize("name", EXAMPLE_MODELS)
def test_the_hub_token_secret_goes_only_to_the_seed_function(fleet: FleetDeploy, name: str) -> None:
    # Serving gets the model's own secrets only; the seed app's secret: test_modal_seed_app.py.
    definitions = _definitions(fleet.api, f"fleet-{name}")
    for fn in _ranked(definitions["Server.*"]):
        assert _secret_names(fleet.api, fn.secret_ids) == set(fleet.catalog.require(name).spec.secrets)


@pytest.mark.parametrize("name", EXAMPLE_MODELS)
def test_image_layers_pin_the_base_vllm_uv_and_every_package(fleet: FleetDeploy, name: str) -> None:
    image = fleet.catalog.require(name).spec.image
    commands = _image_commands(fleet.api, f"fleet-{name}")

    assert f"FROM {image.base}" in commands
    (install,) = [c for c in commands if "uv pip install" in c]
    assert f"vllm=={image.vllm_version}" in install
    for package in RUNTIME_PACKAGES:
        assert package in install.replace("'", "")
    assert f"COPY --from=ghcr.io/astral-sh/uv:{image.uv_version} /uv /.uv/uv" in commands
    assert not any("uv:latest" in c for c in commands)
    for env in ("ENV HF_HUB_CACHE=/weights", "ENV VLLM_CACHE_ROOT=/root/.cache/vllm", "ENV HF_HUB_OFFLINE=1"):
        assert env in commands
    # vLLM's sleep/wake routes need dev mode, and only the GPU snapshot sleeps the engine.
    snapshot = fleet.catalog.require(name).spec.snapshot
    assert ("ENV VLLM_SERVER_DEV_MODE=1" in commands) == (snapshot.enabled and snapshot.gpu_snapshot)
    # Only the seed app's image may reach the hub.
    assert "ENV HF_HUB_OFFLINE=0" not in commands


def test_the_platform_package_is_uploaded_once_per_app(fleet: FleetDeploy) -> None:
    app_id = _app_id(fleet.api, "fleet-smollm2-135m")
    packages = [
        req for req in fleet.api.requests("MountGetOrCreate") if any("/modelfleet/" in f.filename for f in req.files)
    ]
    files = {f.filename for req in packages for f in req.files}
    assert "/root/modelfleet/targets/modal/entry.py" in files
    assert "/root/modelfleet/runtime/edge.py" in files
    assert app_id  # the app exists; uploads are content-addressed, so shared between apps


@pytest.fixture(scope="module")
def public_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModalApiRecorder, CatalogModel]]:
    """A fleet root with one model declared public, snapshots off, pinned to a region."""
    root = tmp_path_factory.mktemp("public-fleet")
    shutil.copy(REPO / "fleet.toml", root / "fleet.toml")
    shutil.copytree(REPO / "volumes", root / "volumes")
    folder = root / "models" / "open-demo"
    folder.parent.mkdir()
    shutil.copytree(REPO / "models" / "smollm2-135m", folder)
    model_file = folder / "model.toml"
    # Top-level keys go before the first table.
    model_file.write_text(
        'region = "us-east"\n'
        + model_file.read_text()
        + "\n[auth]\npublic = true\n\n[snapshot]\nenabled = false\ngpu_snapshot = false\n"
    )
    with ModalApiRecorder() as api:
        create_workspace(api, root)
        (outcome,) = drive(api, "deploy", "commit-9", root=root)
        assert outcome["result"] == "ok", outcome
        yield api, load_catalog(FleetSettings(root=root)).require("open-demo")


def test_a_public_model_has_no_proxy_auth_and_no_snapshot(public_fleet: tuple[ModalApiRecorder, CatalogModel]) -> None:
    api, model = public_fleet
    server = _definitions(api, "fleet-open-demo")["Server.*"]
    assert server.method_definitions["serve"].webhook_config.requires_proxy_auth is False
    for fn in _ranked(server):
        assert fn.checkpointing_enabled is False
        assert list(fn.scheduler_placement.regions) == ["us-east"]
    assert "enable_gpu_snapshot" not in dict(server.experimental_options)
    commands = _image_commands(api, "fleet-open-demo")
    assert not any("VLLM_SERVER_DEV_MODE" in c for c in commands)
    assert model.spec.auth.public


def test_deploy_env_reaches_the_deploy_subprocess_only(tmp_path: Path) -> None:
    # The driver runs with the recorder's MODAL_* settings and nothing else of the developer's.
    with ModalApiRecorder() as api:
        env = fleet_env(api)
    assert env["MODAL_SERVER_URL"].startswith("http://127.0.0.1:")
    assert env["FLEET_TARGET"] == "modal"
