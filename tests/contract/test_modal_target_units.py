"""The Modal target's pure parts: boot kinds, the bundle, pins and the client-output parser.

No modal API server is needed here; these decide what the container reports and what
a failed deploy says, so they are pinned down directly.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from modelfleet.catalog import load_catalog
from modelfleet.settings import FleetSettings
from modelfleet.targets.modal.bundle import BUNDLE_ENV, MODEL_ENV, BundleError, ModelBundle, load_bundle, make_bundle
from modelfleet.targets.modal.client import ModalResult
from modelfleet.targets.modal.image import RUNTIME_PACKAGES, serving_env
from modelfleet.targets.modal.serving import boot_kind
from tests.support.modal_api_target import REPO


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    settings = FleetSettings(root=REPO)
    catalog = load_catalog(settings)
    return make_bundle(catalog.require("llama33-70b-instruct"), catalog, settings)


def test_a_container_whose_snapshot_hook_never_ran_booted_cold() -> None:
    assert boot_kind(False, None, "ta-1") == "cold"


def test_a_snapshot_prepared_in_another_task_was_restored() -> None:
    assert boot_kind(True, "ta-snapshotter", "ta-restored") == "restore"


def test_the_container_that_took_the_snapshot_reports_its_cold_start() -> None:
    assert boot_kind(True, "ta-1", "ta-1") == "cold"


def test_a_prepared_snapshot_with_unknown_task_ids_counts_as_a_restore() -> None:
    assert boot_kind(True, None, None) == "restore"


def test_the_bundle_survives_the_trip_through_the_image_environment(bundle: ModelBundle) -> None:
    value = bundle.to_env()

    assert re.fullmatch(r"[A-Za-z0-9+/=]+", value)  # safe in a Dockerfile ENV line, no quoting needed
    assert ModelBundle.from_env(value) == bundle
    assert bundle.app_name == "fleet-llama33-70b-instruct"
    assert bundle.checkpoint == (
        "/weights/models--meta-llama--Llama-3.3-70B-Instruct/snapshots/6f6073b423013f6a7d4d9f39144961bfbfbc386b"
    )


def test_a_damaged_bundle_is_a_clear_error() -> None:
    with pytest.raises(BundleError, match=BUNDLE_ENV):
        ModelBundle.from_env("not-base64!")


def test_the_app_module_needs_to_be_told_its_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BUNDLE_ENV, raising=False)
    monkeypatch.delenv(MODEL_ENV, raising=False)
    with pytest.raises(BundleError, match="FLEET_MODEL"):
        load_bundle()
    monkeypatch.setenv(MODEL_ENV, "no-such-model")
    monkeypatch.setenv("FLEET_ROOT", str(REPO))
    with pytest.raises(BundleError, match="no-such-model"):
        load_bundle()


def _with_snapshot(bundle: ModelBundle, *, enabled: bool, gpu: bool) -> ModelBundle:
    snapshot = bundle.spec.snapshot.model_copy(update={"enabled": enabled, "gpu_snapshot": gpu})
    return bundle.model_copy(update={"spec": bundle.spec.model_copy(update={"snapshot": snapshot})})


def test_serving_env_points_caches_at_the_volumes_and_keeps_the_hub_offline(bundle: ModelBundle) -> None:
    env = serving_env(bundle)

    assert env["HF_HUB_CACHE"] == "/weights"
    assert env["VLLM_CACHE_ROOT"] == "/root/.cache/vllm"
    assert env["HF_HUB_OFFLINE"] == "1"


@pytest.mark.parametrize(("enabled", "gpu"), [(True, True), (True, False), (False, False)])
def test_vllm_is_pinned_to_loopback_and_torch_kept_quiet_as_in_modals_snapshot_examples(
    bundle: ModelBundle, enabled: bool, gpu: bool
) -> None:
    # vLLM's TCPStore binds the container IP, which a restore changes (modal-examples#1558).
    env = serving_env(_with_snapshot(bundle, enabled=enabled, gpu=gpu))

    assert env["VLLM_HOST_IP"] == "127.0.0.1"
    assert env["TORCH_CPP_LOG_LEVEL"] == "FATAL"


def test_dev_routes_are_on_for_the_gpu_snapshot_only(bundle: ModelBundle) -> None:
    assert serving_env(_with_snapshot(bundle, enabled=True, gpu=True))["VLLM_SERVER_DEV_MODE"] == "1"
    assert "VLLM_SERVER_DEV_MODE" not in serving_env(_with_snapshot(bundle, enabled=True, gpu=False))
    assert "VLLM_SERVER_DEV_MODE" not in serving_env(_with_snapshot(bundle, enabled=False, gpu=False))


@pytest.mark.parametrize("pin", RUNTIME_PACKAGES)
def test_image_runtime_packages_are_pinned_to_the_tested_versions(pin: str) -> None:
    name, version = re.sub(r"\[.*\]", "", pin).split("==")
    assert importlib.metadata.version(name) == version, f"update RUNTIME_PACKAGES in targets/modal/image.py: {pin}"


def test_a_failed_command_is_summarised_by_the_clients_verdict() -> None:
    traceback = "Traceback (most recent call last):\n  File x\n1316\n╯\nInvalidError: A class must have snapshots\n"
    assert ModalResult(("deploy",), 1, "", traceback).reason() == "InvalidError: A class must have snapshots"
    assert ModalResult(("deploy",), 1, "building\n", "boom\n").reason() == "boom"
    assert ModalResult(("deploy",), 1, "building\n", "").reason() == "building"
    assert ModalResult(("deploy",), 3, "", "").reason() == "modal exited with code 3"


def test_the_app_module_imports_in_a_container_without_the_repo(bundle: ModelBundle, tmp_path: Path) -> None:
    # Inside a container there is no models/ folder and no fleet.toml: only the baked bundle.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "MODAL_"))}
    env[BUNDLE_ENV] = bundle.to_env()
    code = "import modelfleet.targets.modal.entry as e; print(e.app.name, e.BUNDLE.served_name)"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["fleet-llama33-70b-instruct", "llama-3.3-70b-instruct"]


@pytest.mark.parametrize("model", ["smollm2-135m", "llama33-70b-instruct"])
def test_the_serving_class_reserves_the_models_cpu_and_memory(model: str, tmp_path: Path) -> None:
    # fn.info() of the class's service function, read offline from the very module Modal deploys.
    settings = FleetSettings(root=REPO)
    catalog = load_catalog(settings)
    spec = catalog.require(model).spec
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "MODAL_"))}
    env[BUNDLE_ENV] = make_bundle(catalog.require(model), catalog, settings).to_env()
    code = (
        "import json, modelfleet.targets.modal.entry as e; "
        "i = e.Server._get_class_service_function().info(); print(json.dumps([i.cpu, i.memory_mib]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [spec.serving_cpu(), spec.serving_memory_mib()]
    assert spec.serving_memory_mib() > 128  # Modal's default reservation is 128 MiB
