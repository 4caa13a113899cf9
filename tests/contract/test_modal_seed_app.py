"""Seeding is an app of its own; serving only looks the weights volume up (issue 12, #11 and #7).

What Modal receives, through the real modal client and the strict loopback recorder:
``fleet seed`` runs ``modal run`` of the seed app, whose one CPU function creates and
writes the weights volume; the serving app defines no seed function, never creates the
weights volume (a deploy before the first seed fails as on Modal), and mounts one
compile-cache folder per model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from modal_proto import api_pb2

from modelfleet.catalog import load_catalog
from modelfleet.settings import FleetSettings
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import REPO, app_definitions, create_workspace, drive, ranked_functions, run_driver

MODEL = "smollm2-135m"
WEIGHTS = "modelfleet-weights"
CACHE = "modelfleet-vllm-cache"


_functions_of = app_definitions
_ranked = ranked_functions


@pytest.fixture(scope="module")
def deployed() -> Iterator[ModalApiRecorder]:
    """The demo model deployed once into a workspace that holds every declared volume."""
    with ModalApiRecorder() as api:
        create_workspace(api)
        (outcome,) = drive(api, "deploy", "commit-1", MODEL)
        assert outcome["result"] == "ok", outcome
        yield api


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[ModalApiRecorder, dict[str, Any]]]:
    """``fleet seed`` of the demo model in an empty workspace (no volume yet).

    The recorder runs no containers: the seed call itself (``FunctionMap``) is where it
    stops, after Modal has received the whole seed app -- what these tests check.
    """
    with ModalApiRecorder() as api:
        done = run_driver(api, "seed", MODEL)
        (outcome,) = json.loads(done.stdout.strip().splitlines()[-1])
        yield api, outcome


def test_the_serving_app_defines_the_server_class_and_nothing_else(deployed: ModalApiRecorder) -> None:
    app_id = deployed.apps()[f"fleet-{MODEL}"].app_id
    assert set(_functions_of(deployed, app_id)) == {"Server.*"}


def test_the_serving_app_looks_the_weights_volume_up_and_never_creates_it(deployed: ModalApiRecorder) -> None:
    requests = [req for name, req in deployed.calls if name == "VolumeGetOrCreate"]
    weights = {req.object_creation_type for req in requests if req.deployment_name == WEIGHTS}
    cache = {req.object_creation_type for req in requests if req.deployment_name == CACHE}

    assert weights == {api_pb2.OBJECT_CREATION_TYPE_UNSPECIFIED}
    assert cache == {api_pb2.OBJECT_CREATION_TYPE_CREATE_IF_MISSING}  # serving may create its cache


def test_a_deploy_before_the_first_seed_fails_as_on_modal() -> None:
    with ModalApiRecorder() as api:
        create_workspace(api)
        api.state.volumes.pop((api.state.environment, WEIGHTS))
        (outcome,) = drive(api, "deploy", "commit-1", MODEL)

        assert outcome["result"] == "failed"
        assert WEIGHTS in outcome["detail"]
        assert (api.state.environment, WEIGHTS) not in api.state.volumes  # nothing empty was mounted instead


def test_each_model_mounts_its_own_compile_cache_folder(deployed: ModalApiRecorder) -> None:
    app_id = deployed.apps()[f"fleet-{MODEL}"].app_id
    by_id = {vid: name for (_env, name), (vid, _version) in deployed.state.volumes.items()}
    for fn in _ranked(_functions_of(deployed, app_id)["Server.*"]):
        mounts = {m.mount_path: (by_id[m.volume_id], m.read_only, m.sub_path) for m in fn.volume_mounts}
        assert mounts == {
            "/weights": (WEIGHTS, True, ""),
            "/root/.cache/vllm": (CACHE, False, f"/{MODEL}"),
        }


def test_seeding_sends_a_seed_app_with_one_cpu_function_and_no_gpu_class(
    seeded: tuple[ModalApiRecorder, dict[str, Any]],
) -> None:
    api, outcome = seeded
    names = {app.description for app in api.all_apps().values()}
    assert names == {f"fleet-{MODEL}-seed"}, outcome
    (app_id,) = api.all_apps()
    functions = _functions_of(api, app_id)
    assert set(functions) == {"seed"}
    (seed,) = _ranked(functions["seed"])
    assert not seed.resources.gpu_config.gpu_type
    assert not api.requests("ClassCreate")
    by_id = {vid: name for (_env, name), (vid, _version) in api.state.volumes.items()}
    assert {m.mount_path: (by_id[m.volume_id], m.read_only) for m in seed.volume_mounts} == {
        "/weights": (WEIGHTS, False)
    }


def test_the_seed_app_creates_the_weights_volume(seeded: tuple[ModalApiRecorder, dict[str, Any]]) -> None:
    api, _ = seeded
    requests = [req for name, req in api.calls if name == "VolumeGetOrCreate" and req.deployment_name == WEIGHTS]

    assert {req.object_creation_type for req in requests} == {api_pb2.OBJECT_CREATION_TYPE_CREATE_IF_MISSING}
    assert (api.state.environment, WEIGHTS) in api.state.volumes


def test_the_hub_token_secret_goes_to_the_seed_function_of_a_gated_model() -> None:
    with ModalApiRecorder() as api:
        create_workspace(api)
        run_driver(api, "seed", "llama33-70b-instruct")
        (app_id,) = api.all_apps()
        (seed,) = _ranked(_functions_of(api, app_id)["seed"])
        by_id = {sid: name for (_env, name), (sid, _values) in api.state.secrets.items()}

        assert {by_id[i] for i in seed.secret_ids} == {"huggingface-secret"}
        commands = [c for req in api.requests("ImageGetOrCreate") for c in req.image.dockerfile_commands]
        assert "ENV HF_HUB_OFFLINE=0" in commands  # the one image that may reach the hub


def test_seeding_a_gated_model_fails_when_its_token_secret_lacks_hf_token() -> None:
    with ModalApiRecorder() as api:
        create_workspace(api, skip_secrets=("huggingface-secret",))
        api.create_secret("huggingface-secret", {"HUGGINGFACE_TOKEN": "hf_placeholder"})
        done = run_driver(api, "seed", "llama33-70b-instruct")

        (outcome,) = json.loads(done.stdout.strip().splitlines()[-1])
        assert outcome["result"] == "failed", outcome
        assert "huggingface-secret" in outcome["detail"] and "HF_TOKEN" in outcome["detail"], outcome


def test_function_create_reserves_the_models_cpu_and_memory(deployed: ModalApiRecorder) -> None:
    spec = load_catalog(FleetSettings(root=REPO)).require(MODEL).spec
    app_id = deployed.apps()[f"fleet-{MODEL}"].app_id
    for fn in _ranked(_functions_of(deployed, app_id)["Server.*"]):
        # FunctionCreate carries milli-cores and MiB (modal/_resources.py, convert_fn_config_to_resources_config).
        assert (fn.resources.milli_cpu, fn.resources.memory_mb) == (
            round(spec.serving_cpu() * 1000),
            spec.serving_memory_mib(),
        )
