"""The vLLM command line and environment built from the demo model's real declaration."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelfleet.catalog import load_catalog
from modelfleet.runtime.command import Platform, snapshot_kind, vllm_command, vllm_env
from modelfleet.runtime.preloaded import launcher_entry
from modelfleet.settings import FleetSettings
from modelfleet.spec.model import ModelSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_PATH = Path("/vol/weights/smollm2")


@pytest.fixture
def demo_spec(monkeypatch: pytest.MonkeyPatch) -> ModelSpec:
    """The demo model as the catalog loads it (fleet.toml defaults merged in)."""
    monkeypatch.setenv("FLEET_ROOT", str(REPO_ROOT))
    return load_catalog(FleetSettings()).require("smollm2-135m").spec


def _flag(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _gpu(spec: ModelSpec) -> list[str]:
    return vllm_command(spec, model_path=MODEL_PATH, served_name="smollm2-135m", port=8001, platform="gpu")


def _cpu(spec: ModelSpec) -> list[str]:
    return vllm_command(spec, model_path=MODEL_PATH, served_name="smollm2-135m", port=8001, platform="cpu")


def test_gpu_command_carries_every_serving_field_of_the_spec(demo_spec: ModelSpec) -> None:
    argv = _gpu(demo_spec)
    assert argv[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    assert _flag(argv, "--model") == str(MODEL_PATH)
    assert _flag(argv, "--served-model-name") == "smollm2-135m"
    assert _flag(argv, "--host") == "127.0.0.1"
    assert _flag(argv, "--port") == "8001"
    assert _flag(argv, "--max-model-len") == "8192"
    assert _flag(argv, "--max-num-seqs") == "64"
    assert _flag(argv, "--tensor-parallel-size") == "1"
    assert _flag(argv, "--gpu-memory-utilization") == "0.9"
    assert _flag(argv, "--dtype") == demo_spec.vllm.dtype
    assert "--enforce-eager" not in argv  # local-only setting


def _snapshot(spec: ModelSpec, *, enabled: bool, gpu: bool) -> ModelSpec:
    return spec.model_copy(
        update={"snapshot": spec.snapshot.model_copy(update={"enabled": enabled, "gpu_snapshot": gpu})}
    )


def test_sleep_mode_and_dev_routes_come_with_the_gpu_snapshot_only(demo_spec: ModelSpec) -> None:
    gpu = _snapshot(demo_spec, enabled=True, gpu=True)
    assert snapshot_kind(gpu) == "gpu"
    assert "--enable-sleep-mode" in _gpu(gpu)
    assert vllm_env(gpu, platform="gpu")["VLLM_SERVER_DEV_MODE"] == "1"
    for kind, spec in (
        ("memory", _snapshot(demo_spec, enabled=True, gpu=False)),
        ("none", _snapshot(demo_spec, enabled=False, gpu=False)),
    ):
        assert snapshot_kind(spec) == kind
        assert "--enable-sleep-mode" not in _gpu(spec)
        assert "VLLM_SERVER_DEV_MODE" not in vllm_env(spec, platform="gpu")


def test_a_memory_only_snapshot_serves_with_the_flags_of_no_snapshot(demo_spec: ModelSpec) -> None:
    # vLLM's compile-cache key follows the flags: a memory-only snapshot must not change it.
    memory = _snapshot(demo_spec, enabled=True, gpu=False)
    none = _snapshot(demo_spec, enabled=False, gpu=False)

    assert _gpu(memory) == _gpu(none)
    assert vllm_env(memory, platform="gpu") == vllm_env(none, platform="gpu")


def test_cpu_command_uses_the_local_overrides_and_no_gpu_flags(demo_spec: ModelSpec) -> None:
    argv = _cpu(demo_spec)
    assert _flag(argv, "--max-model-len") == "2048"
    assert _flag(argv, "--max-num-seqs") == "8"
    assert "--enforce-eager" in argv
    for gpu_only in ("--enable-sleep-mode", "--tensor-parallel-size", "--gpu-memory-utilization"):
        assert gpu_only not in argv
    env = vllm_env(demo_spec, platform="cpu")
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert "VLLM_SERVER_DEV_MODE" not in env


def test_extra_args_quantization_and_tp_come_through(demo_spec: ModelSpec) -> None:
    vllm = demo_spec.vllm.model_copy(
        update={"tensor_parallel_size": 4, "quantization": "fp8", "extra_args": ["--kv-cache-dtype", "fp8"]}
    )
    local = demo_spec.local.model_copy(update={"extra_args": ["--swap-space", "1"], "enforce_eager": False})
    spec = demo_spec.model_copy(update={"vllm": vllm, "local": local})
    gpu = _gpu(spec)
    assert _flag(gpu, "--tensor-parallel-size") == "4"
    assert _flag(gpu, "--quantization") == "fp8"
    assert gpu[-2:] == ["--kv-cache-dtype", "fp8"]
    assert "--swap-space" not in gpu  # local extras stay local
    cpu = _cpu(spec)
    assert cpu[-4:] == ["--kv-cache-dtype", "fp8", "--swap-space", "1"]
    assert "--enforce-eager" not in cpu


def test_local_overrides_fall_back_to_the_vllm_block_when_unset(demo_spec: ModelSpec) -> None:
    local = demo_spec.local.model_copy(update={"max_model_len": None, "max_num_seqs": None, "kv_cache_gib": 3})
    spec = demo_spec.model_copy(update={"local": local})
    argv = _cpu(spec)
    assert _flag(argv, "--max-model-len") == "8192"
    assert _flag(argv, "--max-num-seqs") == "64"
    assert vllm_env(spec, platform="cpu")["VLLM_CPU_KVCACHE_SPACE"] == "3"


def test_entry_is_replaceable_by_the_preloading_launcher(demo_spec: ModelSpec) -> None:
    entry = launcher_entry(Path("/tmp/control"))
    argv = vllm_command(demo_spec, model_path=MODEL_PATH, served_name="x", port=1, platform="gpu", entry=entry)
    assert argv[: len(entry) + 1] == [*entry, "--model"]


def test_model_image_env_is_passed_to_vllm(demo_spec: ModelSpec) -> None:
    image = demo_spec.image.model_copy(update={"env": {"VLLM_LOGGING_LEVEL": "DEBUG"}})
    env = vllm_env(demo_spec.model_copy(update={"image": image}), platform="gpu")
    assert env["VLLM_LOGGING_LEVEL"] == "DEBUG"


def test_on_a_unix_socket_vllm_gets_no_host_and_no_port(demo_spec: ModelSpec) -> None:
    # The local target's isolated engine: the socket file is its one way in.
    socket_path = Path("/tmp/fleet/sockets/smollm2-135m.sock")
    argv = vllm_command(
        demo_spec, model_path=MODEL_PATH, served_name="x", port=1, platform="cpu", socket_path=socket_path
    )
    assert _flag(argv, "--uds") == str(socket_path)
    assert "--host" not in argv and "--port" not in argv


@pytest.mark.parametrize("platform", ["gpu", "cpu"])
def test_vllms_access_log_which_prints_query_strings_is_off(demo_spec: ModelSpec, platform: Platform) -> None:
    argv = vllm_command(demo_spec, model_path=MODEL_PATH, served_name="x", port=1, platform=platform)
    assert "--disable-uvicorn-access-log" in argv


def test_a_model_cannot_declare_the_socket_flag(demo_spec: ModelSpec) -> None:
    with pytest.raises(ValueError, match="--uds is owned by the platform"):
        demo_spec.vllm.model_validate({**demo_spec.vllm.model_dump(), "extra_args": ["--uds", "/tmp/x.sock"]})
