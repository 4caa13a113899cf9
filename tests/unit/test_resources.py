"""Host CPU and memory per serving container: derived from the model, overridable, and linted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from modelfleet.catalog import Catalog, load_catalog
from modelfleet.settings import FleetSettings
from modelfleet.spec.resources import MODAL_DEFAULT_CPU, MODAL_DEFAULT_MEMORY_MIB
from tests.unit.conftest import MINIMAL_MODEL

WriteModel = Callable[[str, str], Path]


def _load() -> Catalog:
    return load_catalog(FleetSettings())


def _errors(catalog: Catalog) -> list[str]:
    return [f"{p.field}: {p.message}" for p in catalog.errors]


def test_a_gpu_snapshot_model_reserves_its_sleeping_weights_plus_headroom(write_model: WriteModel) -> None:
    # 8 B bf16 = 16e9 bytes = 14.9 GiB copied to pinned host memory at sleep level 1,
    # + 8 GiB + 4 GiB for one GPU = 26.9 -> 27 GiB; 2 cores + 2 per GPU.
    write_model("tiny", MINIMAL_MODEL)
    spec = _load().require("tiny").spec
    assert spec.sleeps_before_gpu_snapshot()
    assert spec.serving_memory_mib() == 27 * 1024
    assert spec.serving_cpu() == 4.0
    # Far above what Modal reserves when told nothing (0.125 cores, 128 MiB).
    assert spec.serving_memory_mib() > MODAL_DEFAULT_MEMORY_MIB and spec.serving_cpu() > MODAL_DEFAULT_CPU


def test_without_a_gpu_snapshot_the_weights_stay_on_the_gpu_and_only_the_headroom_is_reserved(
    write_model: WriteModel,
) -> None:
    write_model("tiny", MINIMAL_MODEL + "\n[snapshot]\ngpu_snapshot = false\n")
    spec = _load().require("tiny").spec
    assert spec.host_weights_gib() == 0.0
    assert spec.serving_memory_mib() == 12 * 1024


def test_more_gpus_get_more_cores_and_headroom(write_model: WriteModel) -> None:
    four = MINIMAL_MODEL.replace('type = "H100"', 'type = "H100"\ncount = 4').replace(
        "max_num_seqs = 64", "max_num_seqs = 64\ntensor_parallel_size = 4"
    )
    write_model("tiny", four + "\n[snapshot]\ngpu_snapshot = false\n")
    spec = _load().require("tiny").spec
    assert spec.serving_cpu() == 10.0  # 2 + 2 x 4
    assert spec.serving_memory_mib() == 24 * 1024  # 8 + 4 x 4 GiB


def test_declared_resources_override_the_derived_ones(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL + "\n[resources]\ncpu = 6.5\nmemory_gib = 40.5\n")
    spec = _load().require("tiny").spec
    assert spec.serving_cpu() == 6.5
    assert spec.serving_memory_mib() == 41472  # 40.5 x 1024, an int as Modal's memory= expects


def test_one_override_leaves_the_other_derived(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL + "\n[resources]\ncpu = 8\n")
    spec = _load().require("tiny").spec
    assert (spec.serving_cpu(), spec.serving_memory_mib()) == (8.0, 27 * 1024)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("memory_gb = 20", "resources.memory_gb: unknown field 'memory_gb'; did you mean 'memory_gib'?"),
        ("cpu = 0", "resources.cpu: Input should be greater than 0"),
        ("memory_gib = -1", "resources.memory_gib: Input should be greater than 0"),
    ],
)
def test_resources_fields_are_validated(write_model: WriteModel, line: str, expected: str) -> None:
    write_model("tiny", MINIMAL_MODEL + f"\n[resources]\n{line}\n")
    catalog = _load()
    messages = [p.render(catalog.root) for p in catalog.errors]
    assert any(expected in m for m in messages), messages


def test_sleeping_weights_beyond_the_hosts_memory_are_an_error_with_the_numbers(write_model: WriteModel) -> None:
    # 70 B bf16 on one L4 with a GPU snapshot: 130.4 GiB of weights in host memory + 12 GiB headroom,
    # an L4's share of its host is 48 GiB. (It does not fit the GPU either: a second error.)
    write_model("huge", MINIMAL_MODEL.replace("params_billion = 8.0", "params_billion = 70.0").replace("H100", "L4"))
    errors = _errors(_load())
    assert (
        "resources: needs 143 GiB of host memory per container (weights 130.4 GiB kept in pinned host memory "
        "while vLLM sleeps for the GPU snapshot + headroom 12 GiB), but L4 x1 comes with at most 48 GiB "
        "(GCP g2-standard-96: 8 x L4, 96 vCPU, 384 GB, shared by 8 GPUs; Modal publishes no maximum); "
        "set snapshot.gpu_snapshot = false (the weights then stay on the GPU), serve a quantized checkpoint, "
        "or pick a GPU type whose host has more memory"
    ) in errors


def test_a_declared_memory_above_what_any_gpu_option_comes_with_is_an_error(write_model: WriteModel) -> None:
    # 100 GiB fits an L40S's share (192 GiB) but not the A100-40GB fallback's (85 GiB).
    text = MINIMAL_MODEL.replace('type = "H100"', 'type = "L40S"\nfallbacks = ["A100-40GB"]')
    write_model("tiny", text + "\n[resources]\nmemory_gib = 100\n")
    (message,) = _errors(_load())
    assert message == (
        "resources.memory_gib: memory_gib = 100 per container, but A100-40GB x1 comes with at most 85 GiB "
        "(GCP a2-highgpu-8g: 8 x A100 40GB, 96 vCPU, 680 GB, shared by 8 GPUs; Modal publishes no maximum); lower it"
    )


def test_a_declared_cpu_above_the_hosts_share_is_an_error(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL + "\n[resources]\ncpu = 20\n")
    (message,) = _errors(_load())
    assert message.startswith(
        "resources.cpu: cpu = 20 per container, but H100 x1 comes with at most 13 cores (GCP a3-highgpu-8g"
    )


def test_every_example_model_reserves_more_than_modals_defaults() -> None:
    from tests.unit.conftest import REPO_ROOT

    catalog = load_catalog(FleetSettings(root=REPO_ROOT))
    assert catalog.errors == []
    for model in catalog.models.values():
        assert model.spec.serving_cpu() >= 4.0
        assert model.spec.serving_memory_mib() >= 12 * 1024
    # The 70B runs without a GPU snapshot: its 141 GB of weights never sit in host memory.
    assert catalog.require("llama33-70b-instruct").spec.serving_memory_mib() == 24 * 1024
