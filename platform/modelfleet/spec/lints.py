"""Cross-field checks that catch what would otherwise fail only at deploy time.

Each finding names the field and carries the numbers, so the message says what to
change: "needs 38.2 GB ..., H100 gives 80 GB x 0.90 = 72.0 GB" rather than "invalid".
"""

from __future__ import annotations

import re

from packaging.version import Version

from modelfleet.spec.cost import cost_findings
from modelfleet.spec.cuda import (
    DEVEL_IMAGE_FOR_CUDA,
    VLLM_CUDA,
    VLLM_OPENAI_REPO,
    base_cuda_version,
    vllm_cuda_row,
    vllm_openai_tag_version,
)
from modelfleet.spec.findings import Finding
from modelfleet.spec.fit import gpu_fit, kv_bytes_per_token
from modelfleet.spec.gpus import parse_gpu_ref
from modelfleet.spec.model import ModelSpec
from modelfleet.spec.resources import HOST_SHARE_PER_GPU, MIB_PER_GIB, memory_headroom_gib
from modelfleet.spec.serving_lints import serving_findings
from modelfleet.spec.weights import BYTES_PER_PARAM, HuggingFaceWeights

MIN_SLEEP_MODE_VLLM = Version("0.8.0")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")

__all__ = ["Finding", "lint"]


def weights_gb(spec: ModelSpec) -> float:
    """GPU memory the weights take, in GB."""
    return spec.weights.params_billion * BYTES_PER_PARAM[spec.weights.dtype]


def kv_cache_gb(spec: ModelSpec, max_model_len: int) -> float | None:
    """KV cache for one sequence of ``max_model_len`` tokens (vLLM refuses to start with less)."""
    arch = spec.weights.architecture
    if arch is None:
        return None
    # The KV cache stays 16-bit even for quantized weights, unless vLLM is told otherwise.
    kv_bytes = 1.0 if any(arg.startswith("--kv-cache-dtype") and "fp8" in arg for arg in _joined(spec)) else 2.0
    per_token = kv_bytes_per_token(
        layers=arch.num_hidden_layers,
        kv_heads=arch.num_key_value_heads,
        head_dim=arch.head_dim,
        bytes_per_value=kv_bytes,
    )
    return per_token * max_model_len / 1e9


def _joined(spec: ModelSpec) -> list[str]:
    """extra_args with ``--flag value`` pairs joined as ``--flag=value``."""
    args = spec.vllm.extra_args
    return [f"{a}={args[i + 1]}" if not a.count("=") and i + 1 < len(args) else a for i, a in enumerate(args)]


def lint(spec: ModelSpec, prices: dict[str, float]) -> list[Finding]:
    """Every cross-field finding for one model."""
    findings: list[Finding] = []
    findings += _revision_is_pinned(spec)
    findings += _tp_matches_gpus(spec)
    findings += _fits_gpu(spec)
    findings += _concurrency_fits_batch(spec)
    findings += _snapshot_is_possible(spec)
    findings += _gpu_snapshot_is_single_gpu(spec)
    findings += _base_matches_vllm_cuda(spec)
    findings += _resources_fit_a_container(spec)
    findings += cost_findings(spec, prices)
    findings += _auth(spec)
    findings += serving_findings(spec)
    return findings


def _revision_is_pinned(spec: ModelSpec) -> list[Finding]:
    weights = spec.weights
    if isinstance(weights, HuggingFaceWeights) and not _COMMIT.match(weights.revision):
        return [
            Finding(
                "error",
                "weights.revision",
                f"{weights.revision!r} is not a commit hash; pin the 40-hex commit "
                f"(huggingface.co/{weights.repo}/commits/main lists them) so every deploy serves the same weights",
            )
        ]
    return []


def _tp_matches_gpus(spec: ModelSpec) -> list[Finding]:
    findings = []
    tp = spec.vllm.tensor_parallel_size
    for name, count in spec.gpu.options():
        if count != tp:
            findings.append(
                Finding(
                    "error",
                    "vllm.tensor_parallel_size",
                    f"tensor_parallel_size is {tp} but GPU option {name}:{count} has {count} GPU(s); "
                    "they must be equal (one shard per GPU)",
                )
            )
    return findings


def _fits_gpu(spec: ModelSpec) -> list[Finding]:
    weights = weights_gb(spec)
    kv = kv_cache_gb(spec, spec.vllm.max_model_len)
    findings = []
    for name, count in spec.gpu.options():
        fit = gpu_fit(
            name,
            count,
            weights_gb=weights,
            kv_gb=kv,
            kv_for=f"at max_model_len={spec.vllm.max_model_len}",
            utilization=spec.vllm.gpu_memory_utilization,
        )
        if not fit.fits:
            findings.append(
                Finding(
                    "error",
                    "gpu",
                    f"{fit.need_text()}, {fit.have_text()}; "
                    "use a larger or additional GPU, a lower max_model_len, or a quantized checkpoint",
                )
            )
    if kv is None:
        findings.append(
            Finding(
                "warning",
                "weights.architecture",
                "no architecture given, so the KV cache is not part of the fit check; "
                "add num_hidden_layers, num_key_value_heads and head_dim from config.json",
            )
        )
    return findings


def _concurrency_fits_batch(spec: ModelSpec) -> list[Finding]:
    cap, seqs = spec.scaling.max_concurrent_inputs, spec.vllm.max_num_seqs
    if cap > seqs:
        return [
            Finding(
                "error",
                "scaling.max_concurrent_inputs",
                f"max_concurrent_inputs ({cap}) is above vllm.max_num_seqs ({seqs}): requests past {seqs} would "
                f"queue inside vLLM instead of scaling out; lower it to <= {seqs} or raise max_num_seqs",
            )
        ]
    return []


def _snapshot_is_possible(spec: ModelSpec) -> list[Finding]:
    snap = spec.snapshot
    findings = []
    if snap.gpu_snapshot and not snap.enabled:
        findings.append(
            Finding(
                "error",
                "snapshot.gpu_snapshot",
                "gpu_snapshot needs the memory snapshot: set snapshot.enabled = true or gpu_snapshot = false",
            )
        )
    if snap.enabled and Version(spec.image.vllm_version) < MIN_SLEEP_MODE_VLLM:
        findings.append(
            Finding(
                "error",
                "snapshot.enabled",
                f"snapshots put vLLM to sleep, which needs vllm >= {MIN_SLEEP_MODE_VLLM} (dev-mode /sleep and /wake_up); "
                f"image.vllm_version is {spec.image.vllm_version}: upgrade it or set snapshot.enabled = false",
            )
        )
    if snap.enabled and snap.warmup_requests == 0:
        findings.append(
            Finding(
                "warning",
                "snapshot.warmup_requests",
                "warmup_requests is 0: the snapshot will hold a server that has never served; "
                "the first request after each restore pays for lazy initialisation",
            )
        )
    return findings


def _gpu_snapshot_is_single_gpu(spec: ModelSpec) -> list[Finding]:
    """A GPU snapshot of a multi-GPU container would not restore.

    cuda-checkpoint, which Modal's GPU snapshots rest on, does not checkpoint CUDA IPC
    memory, and tensor-parallel vLLM shares memory between its GPU workers through it
    (NCCL, custom all-reduce): NVIDIA/cuda-checkpoint#27 reports a 2-GPU vLLM server that
    could not be restored. vLLM's own engine snapshots support TP=1 only, and every
    Modal GPU-snapshot example uses one GPU (notes/modal.md, "GPU snapshots and several GPUs").
    """
    if not spec.snapshot.gpu_snapshot:
        return []
    reasons = []
    if spec.gpu.count > 1:
        reasons.append(f"gpu.count = {spec.gpu.count}")
    if spec.vllm.tensor_parallel_size > 1:
        reasons.append(f"vllm.tensor_parallel_size = {spec.vllm.tensor_parallel_size}")
    reasons += [f"fallback {ref}" for ref in spec.gpu.fallbacks if parse_gpu_ref(ref)[1] > 1]
    if not reasons:
        return []
    return [
        Finding(
            "error",
            "snapshot.gpu_snapshot",
            f"a GPU snapshot needs a single-GPU container, and this model spans several GPUs ({', '.join(reasons)}): "
            "cuda-checkpoint does not checkpoint the IPC memory tensor parallelism uses (NCCL, custom all-reduce), "
            "so the restore fails (NVIDIA/cuda-checkpoint#27), and vLLM's own engine snapshots support TP=1 only; "
            "set gpu_snapshot = false (a memory-only snapshot: every cold start loads the weights) or serve on one GPU",
        )
    ]


def _base_matches_vllm_cuda(spec: ModelSpec) -> list[Finding]:
    """The base image must carry the CUDA major the pinned vLLM's wheel is built for."""
    base, version = spec.image.base, spec.image.vllm_version
    tagged = vllm_openai_tag_version(base)
    if tagged is not None:
        if tagged == version:
            return []  # vLLM's own image of that release: CUDA, torch and vLLM already match
        return [
            Finding(
                "error",
                "image.base",
                f"{base!r} carries {'vLLM ' + tagged if tagged else 'an unversioned vLLM'}, but image.vllm_version "
                f"is {version}: use '{VLLM_OPENAI_REPO}:v{version}' so the image's CUDA, torch and vLLM match",
            )
        ]
    row = vllm_cuda_row(version)
    if row is None:
        known = f"{VLLM_CUDA[0].first} up to {VLLM_CUDA[-1].before}"
        return [
            Finding(
                "warning",
                "image.vllm_version",
                f"vLLM {version} is not in the CUDA table (platform/modelfleet/spec/cuda.py knows {known}, "
                f"exclusive), so the base image's CUDA is unchecked: look up the CUDA its wheel links "
                f"(PyPI / release notes) and add a row, or use '{VLLM_OPENAI_REPO}:v{version}'",
            )
        ]
    want = row.cuda_major
    fix = f"use a CUDA {want} devel image such as '{DEVEL_IMAGE_FOR_CUDA[want]}', or '{VLLM_OPENAI_REPO}:v{version}'"
    cuda = base_cuda_version(base)
    if cuda is None:
        return [
            Finding(
                "warning",
                "image.base",
                f"cannot read a CUDA version from {base!r}, and vLLM {version} is built for CUDA {want}: "
                f"make sure the image carries CUDA {want}, or {fix}",
            )
        ]
    if cuda[0] != want:
        return [
            Finding(
                "error",
                "image.base",
                f"{base!r} carries CUDA {cuda[0]}.{cuda[1]}, but vLLM {version} is built for CUDA {want} "
                f"(its wheel links libcudart.so.{want}; {row.source}); {fix}",
            )
        ]
    return []


def _resources_fit_a_container(spec: ModelSpec) -> list[Finding]:
    """Host memory and cores must fit what a container with each GPU option can be given."""
    memory_gib = spec.serving_memory_mib() / MIB_PER_GIB
    cpu = spec.serving_cpu()
    findings = []
    for name, count in spec.gpu.options():
        share = HOST_SHARE_PER_GPU[name]
        where = f"{name} x{count} comes with at most"
        source = f"({share.source}, shared by 8 GPUs; Modal publishes no maximum)"
        if memory_gib > share.memory_gib * count:
            findings.append(
                Finding(
                    "error", *_memory_problem(spec, memory_gib, f"{where} {share.memory_gib * count:g} GiB {source}")
                )
            )
        if cpu > share.cpu_cores * count:
            field, what = (
                ("resources.cpu", f"cpu = {cpu:g}")
                if spec.resources.cpu is not None
                else ("resources", f"needs {cpu:g} cores")
            )
            findings.append(
                Finding(
                    "error",
                    field,
                    f"{what} per container, but {where} {share.cpu_cores * count:g} cores {source}; lower it",
                )
            )
    return findings


def _memory_problem(spec: ModelSpec, memory_gib: float, limit: str) -> tuple[str, str]:
    """(field, message) for host memory that does not fit, with where the number comes from."""
    if spec.resources.memory_gib is not None:
        return (
            "resources.memory_gib",
            f"memory_gib = {spec.resources.memory_gib:g} per container, but {limit}; lower it",
        )
    headroom = memory_headroom_gib(spec.gpu.count)
    return (
        "resources",
        f"needs {memory_gib:g} GiB of host memory per container (weights {spec.host_weights_gib():.1f} GiB kept in "
        f"pinned host memory while vLLM sleeps for the GPU snapshot + headroom {headroom:g} GiB), but {limit}; "
        "set snapshot.gpu_snapshot = false (the weights then stay on the GPU), serve a quantized checkpoint, "
        "or pick a GPU type whose host has more memory",
    )


def _auth(spec: ModelSpec) -> list[Finding]:
    if spec.auth.public:
        return [
            Finding(
                "warning",
                "auth.public",
                "this endpoint is PUBLIC: anyone with the URL can use the GPUs you pay for; "
                "remove `public = true` to require Modal proxy auth",
            )
        ]
    return []
