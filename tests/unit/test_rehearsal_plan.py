"""The container rehearsal's plan: the image's environment, volumes on local folders, the path CPU vLLM can run."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfleet.catalog import load_catalog
from modelfleet.settings import FleetSettings
from modelfleet.targets.modal.bundle import BUNDLE_ENV, ModelBundle, make_bundle
from modelfleet.targets.modal.rehearsal import RehearsalError, plan_rehearsal
from modelfleet.targets.modal.rehearsal.plan import SNAPSHOT_TASK_ID
from modelfleet.targets.modal.serving import REHEARSAL_PLATFORM_ENV, engine_platform

REPO = Path(__file__).resolve().parents[2]
DEMO = "smollm2-135m"


@pytest.fixture
def demo_bundle() -> ModelBundle:
    settings = FleetSettings(root=REPO)
    catalog = load_catalog(settings)
    return make_bundle(catalog.require(DEMO), catalog, settings)


def seeded(bundle: ModelBundle, weights_root: Path) -> Path:
    """A checkpoint folder where the bundle expects one, under ``weights_root``."""
    checkpoint = weights_root / Path(bundle.checkpoint).relative_to(bundle.weights.mount_path)
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.json").write_text("{}")
    return checkpoint


def test_volumes_map_to_local_folders_in_the_bundle_the_container_reads(
    demo_bundle: ModelBundle, tmp_path: Path
) -> None:
    checkpoint = seeded(demo_bundle, tmp_path / "weights")

    plan = plan_rehearsal(
        demo_bundle, weights_root=tmp_path / "weights", cache_root=tmp_path / "cache", workdir=tmp_path
    )

    carried = ModelBundle.from_env(plan.env[BUNDLE_ENV])
    assert carried.checkpoint == str(checkpoint)
    assert carried.weights.mount_path == str(tmp_path / "weights")
    # Modal mounts the model's sub_path of the cache volume at the mount path: the local folder is that sub_path.
    assert carried.compile_cache.mount_path == str(tmp_path / "cache" / DEMO)
    assert plan.env["HF_HUB_CACHE"] == str(tmp_path / "weights")
    assert plan.env["VLLM_CACHE_ROOT"] == str(tmp_path / "cache" / DEMO)
    assert [(v.mount_path, v.local) for v in plan.volumes] == [
        (demo_bundle.weights.mount_path, tmp_path / "weights"),
        (demo_bundle.compile_cache.mount_path, tmp_path / "cache" / DEMO),
    ]


def test_the_environment_is_the_images_and_modals_nothing_of_the_caller(
    demo_bundle: ModelBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded(demo_bundle, tmp_path / "weights")
    monkeypatch.setenv("HF_TOKEN", "hf_caller_secret")
    monkeypatch.setenv("FLEET_TARGET", "local")

    plan = plan_rehearsal(
        demo_bundle, weights_root=tmp_path / "weights", cache_root=tmp_path / "cache", workdir=tmp_path
    )

    assert "HF_TOKEN" not in plan.env and "FLEET_TARGET" not in plan.env
    assert plan.env["HF_HUB_OFFLINE"] == "1"
    assert plan.env[REHEARSAL_PLATFORM_ENV] == "cpu"
    assert plan.env["MODAL_TASK_ID"] == SNAPSHOT_TASK_ID
    # The snapshotting task: Modal's maybe_snapshot checks this flag before it snapshots.
    assert plan.env["MODAL_ENABLE_SNAP_RESTORE"] == "1"
    assert plan.env["HOME"] == str(tmp_path / "home")


def test_a_gpu_snapshot_is_rehearsed_as_the_memory_only_path_and_the_plan_says_so(
    demo_bundle: ModelBundle, tmp_path: Path
) -> None:
    seeded(demo_bundle, tmp_path / "weights")
    assert demo_bundle.spec.snapshot.gpu_snapshot  # the demo declares a GPU snapshot

    plan = plan_rehearsal(
        demo_bundle, weights_root=tmp_path / "weights", cache_root=tmp_path / "cache", workdir=tmp_path
    )

    assert (plan.declared_snapshot, plan.rehearsed_snapshot) == ("gpu", "memory")
    assert any("CPU vLLM cannot sleep" in note for note in plan.notes)
    assert ModelBundle.from_env(plan.env[BUNDLE_ENV]).spec.snapshot.gpu_snapshot is False


def test_an_unseeded_model_is_refused_with_the_command_that_seeds_it(demo_bundle: ModelBundle, tmp_path: Path) -> None:
    with pytest.raises(RehearsalError, match=f"fleet seed {DEMO}"):
        plan_rehearsal(demo_bundle, weights_root=tmp_path / "weights", cache_root=tmp_path / "cache", workdir=tmp_path)


def test_the_engine_platform_is_gpu_in_every_container_and_cpu_only_under_the_rehearsal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(REHEARSAL_PLATFORM_ENV, raising=False)
    assert engine_platform() == "gpu"
    monkeypatch.setenv(REHEARSAL_PLATFORM_ENV, "cpu")
    assert engine_platform() == "cpu"
