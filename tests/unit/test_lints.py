"""Every lint, with the numbers its message carries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from modelfleet.catalog import Catalog, load_catalog
from modelfleet.settings import FleetSettings
from tests.unit.conftest import MINIMAL_MODEL

WriteModel = Callable[[str, str], Path]
SNAPSHOT_WITHOUT_GPU = "\n[snapshot]\ngpu_snapshot = false\n"


def _load() -> Catalog:
    return load_catalog(FleetSettings())


def _findings(catalog: Catalog, level: str) -> list[str]:
    return [f"{p.field}: {p.message}" for p in catalog.problems if p.level == level]


def test_weights_and_kv_cache_that_do_not_fit_are_an_error_with_the_numbers(write_model: WriteModel) -> None:
    # 70 B in bf16 = 140 GB of weights on one H100 (80 GB x 0.90 = 72 GB).
    write_model("huge", MINIMAL_MODEL.replace("params_billion = 8.0", "params_billion = 70.0"))
    catalog = _load()
    assert "huge" not in catalog.models
    (message,) = _findings(catalog, "error")
    assert message == (
        "gpu: needs 142.6 GB (weights 140.0 GB + KV cache 1.1 GB at max_model_len=8192 + overhead 1.5 GB), "
        "H100 x1 gives 80 GB x 1 x 0.90 = 72.0 GB; use a larger or additional GPU, a lower max_model_len, "
        "or a quantized checkpoint"
    )


def test_a_long_context_can_make_a_fitting_model_not_fit(write_model: WriteModel) -> None:
    # 8 B bf16 = 16 GB fits an L4 (24 GB x 0.9 = 21.6 GB) at 8k, not at 128k (16.8 GB of KV cache).
    small = MINIMAL_MODEL.replace('type = "H100"', 'type = "L4"')
    write_model("short", small)
    write_model("long", small.replace("max_model_len = 8192", "max_model_len = 131072"))
    catalog = _load()
    assert "short" in catalog.models
    assert "long" not in catalog.models
    (message,) = _findings(catalog, "error")
    assert "KV cache 17.2 GB at max_model_len=131072" in message
    assert "L4 x1 gives 24 GB x 1 x 0.90 = 21.6 GB" in message


def test_every_fallback_gpu_must_fit_too(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL.replace('type = "H100"', 'type = "H100"\nfallbacks = ["T4"]'))
    (message,) = _findings(_load(), "error")
    assert "T4 x1 gives 16 GB x 1 x 0.90 = 14.4 GB" in message


def test_tensor_parallel_defaults_to_the_gpu_count(write_model: WriteModel) -> None:
    # (No GPU snapshot: on two GPUs it is an error of its own.)
    write_model("tiny", MINIMAL_MODEL.replace('type = "H100"', 'type = "H100"\ncount = 2') + SNAPSHOT_WITHOUT_GPU)
    catalog = _load()
    assert _findings(catalog, "error") == []
    assert catalog.require("tiny").spec.vllm.tensor_parallel_size == 2


def test_tensor_parallel_must_equal_the_gpu_count(write_model: WriteModel) -> None:
    two_gpus_tp_one = MINIMAL_MODEL.replace('type = "H100"', 'type = "H100"\ncount = 2').replace(
        "max_num_seqs = 64", "max_num_seqs = 64\ntensor_parallel_size = 1"
    )
    write_model("tiny", two_gpus_tp_one + SNAPSHOT_WITHOUT_GPU)
    (message,) = _findings(_load(), "error")
    assert message == (
        "vllm.tensor_parallel_size: tensor_parallel_size is 1 but GPU option H100:2 has 2 GPU(s); "
        "they must be equal (one shard per GPU)"
    )


def test_an_unpinned_revision_is_an_error(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL.replace("0123456789abcdef0123456789abcdef01234567", "main"))
    (message,) = _findings(_load(), "error")
    assert message.startswith("weights.revision: 'main' is not a commit hash; pin the 40-hex commit")


def test_max_concurrent_inputs_above_max_num_seqs_is_an_error(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL + "\n[scaling]\nmax_concurrent_inputs = 100\n")
    (message,) = _findings(_load(), "error")
    assert message.startswith(
        "scaling.max_concurrent_inputs: max_concurrent_inputs (100) is above vllm.max_num_seqs (64)"
    )


def test_a_gpu_snapshot_without_the_memory_snapshot_is_an_error(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL + "\n[snapshot]\nenabled = false\ngpu_snapshot = true\n")
    (message,) = _findings(_load(), "error")
    assert message.startswith("snapshot.gpu_snapshot: gpu_snapshot needs the memory snapshot")


def test_snapshots_on_a_vllm_without_sleep_mode_are_an_error(write_model: WriteModel) -> None:
    old_stack = '\n[image]\nvllm_version = "0.6.3"\nbase = "nvidia/cuda:12.1.1-devel-ubuntu22.04"\n'
    write_model("tiny", MINIMAL_MODEL + old_stack)
    (message,) = _findings(_load(), "error")
    assert "needs vllm >= 0.8.0" in message and "image.vllm_version is 0.6.3" in message


def test_a_pre_release_of_the_first_sleep_mode_vllm_is_before_it(write_model: WriteModel) -> None:
    # PEP 440 (packaging.version): 0.8.0rc1 < 0.8.0. The hand-written parser read it as 0.8.0.
    rc_stack = '\n[image]\nvllm_version = "0.8.0rc1"\nbase = "nvidia/cuda:12.1.1-devel-ubuntu22.04"\n'
    write_model("tiny", MINIMAL_MODEL + rc_stack)
    errors = [m for m in _findings(_load(), "error") if m.startswith("snapshot.enabled")]
    assert errors and "needs vllm >= 0.8.0" in errors[0] and "image.vllm_version is 0.8.0rc1" in errors[0]


def test_a_version_packaging_cannot_read_is_rejected_by_the_spec(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL + '\n[image]\nvllm_version = "0.25.0x"\n')
    (message,) = _findings(_load(), "error")
    assert message.startswith("image.vllm_version: '0.25.0x' is not a PEP 440 version")


def test_min_containers_warns_with_its_monthly_floor_cost(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL + "\n[scaling]\nmin_containers = 2\nmax_containers = 4\n")
    catalog = _load()
    assert "tiny" in catalog.models  # a warning does not block
    (message,) = [m for m in _findings(catalog, "warning") if m.startswith("scaling.min_containers")]
    # 2 x H100 at $3.95/h (fleet.toml) = $7.90/h, x 730 h.
    assert message == (
        "scaling.min_containers: min_containers = 2 keeps 2 x H100 x1 running even when idle: "
        "$7.90/h, about $5,767/month"
    )


def test_a_public_endpoint_always_warns(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL + "\n[auth]\npublic = true\n")
    catalog = _load()
    assert "tiny" in catalog.models
    (message,) = _findings(catalog, "warning")
    assert message.startswith("auth.public: this endpoint is PUBLIC")


def test_missing_architecture_warns_that_the_kv_cache_is_unchecked(write_model: WriteModel) -> None:
    write_model(
        "tiny",
        MINIMAL_MODEL.replace(
            "architecture = { num_hidden_layers = 32, num_key_value_heads = 8, head_dim = 128 }\n", ""
        ),
    )
    (message,) = _findings(_load(), "warning")
    assert message.startswith("weights.architecture: no architecture given")


def test_zero_warmup_with_snapshots_warns(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL + "\n[snapshot]\nwarmup_requests = 0\n")
    (message,) = _findings(_load(), "warning")
    assert message.startswith("snapshot.warmup_requests: warmup_requests is 0")


def _two_gpus(extra_gpu: str = "") -> str:
    """MINIMAL_MODEL on 2 x H100, tensor parallel 2 (a valid multi-GPU model but for the snapshot)."""
    return MINIMAL_MODEL.replace('type = "H100"', f'type = "H100"\ncount = 2{extra_gpu}').replace(
        "max_num_seqs = 64", "max_num_seqs = 64\ntensor_parallel_size = 2"
    )


def test_a_gpu_snapshot_of_a_multi_gpu_model_is_an_error_with_the_reason_and_the_fix(write_model: WriteModel) -> None:
    # The platform's defaults turn gpu_snapshot on; a tensor-parallel container cannot be restored from one.
    write_model("tiny", _two_gpus('\nfallbacks = ["A100-80GB:2"]'))
    catalog = _load()
    assert "tiny" not in catalog.models
    (message,) = _findings(catalog, "error")
    assert message.startswith(
        "snapshot.gpu_snapshot: a GPU snapshot needs a single-GPU container, and this model spans several GPUs "
        "(gpu.count = 2, vllm.tensor_parallel_size = 2, fallback A100-80GB:2): cuda-checkpoint does not "
        "checkpoint the IPC memory tensor parallelism uses"
    )
    assert "NVIDIA/cuda-checkpoint#27" in message
    assert message.endswith(
        "set gpu_snapshot = false (a memory-only snapshot: every cold start loads the weights) or serve on one GPU"
    )


def test_a_multi_gpu_model_with_a_memory_only_snapshot_validates(write_model: WriteModel) -> None:
    write_model("tiny", _two_gpus() + SNAPSHOT_WITHOUT_GPU)
    catalog = _load()
    assert [p.message for p in catalog.errors] == []
    assert "tiny" in catalog.models


def test_a_single_gpu_model_keeps_the_gpu_snapshot(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL)
    spec = _load().require("tiny").spec
    assert spec.snapshot.gpu_snapshot is True
