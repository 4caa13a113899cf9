"""Host CPU and memory a serving container reserves, derived from the model unless declared.

Without ``cpu=`` / ``memory=`` a Modal container reserves 0.125 physical cores and
128 MiB (it may burst above when the worker has room, and nothing guarantees it;
modal.com/docs/guide/resources). A vLLM server needs far more: sleep level 1, which
the GPU-snapshot path uses, copies every weight into pinned host memory (vLLM docs,
features/sleep_mode: "make sure there's enough CPU memory to store the model
weights"), and the memory snapshot then captures it. So the platform reserves the
weights' bytes (when the engine sleeps) plus a headroom, and cores per GPU; a model
overrides either in ``[resources]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from pydantic import Field

from modelfleet.spec.base import StrictModel

MIB_PER_GIB: Final = 1024
BYTES_PER_GIB: Final = 2**30

# What Modal reserves when told nothing (modal.com/docs/guide/resources, "Reserving CPU and memory").
MODAL_DEFAULT_CPU: Final = 0.125
MODAL_DEFAULT_MEMORY_MIB: Final = 128

# Cores. vLLM (V1) runs one API-server process, one engine-core process that busy-loops
# the scheduler, and one worker process per GPU (vLLM docs, design/arch_overview:
# "Understanding this architecture is important for properly sizing CPU resources"),
# so 2 + N busy processes. We reserve 2 cores for the first two and 2 per GPU: the
# worker, plus tokenisation/detokenisation and the edge relaying the stream.
CPU_CORES_BASE: Final = 2.0
CPU_CORES_PER_GPU: Final = 2.0

# Memory beyond sleeping weights: Python, torch and the CUDA libraries mapped into the
# API server and engine core (a few GiB each), the edge; then per GPU worker its own
# torch/CUDA context on the host and NCCL / pinned staging buffers.
MEMORY_HEADROOM_GIB_BASE: Final = 8.0
MEMORY_HEADROOM_GIB_PER_GPU: Final = 4.0


@dataclass(frozen=True)
class HostShare:
    """The host CPU cores and memory that come with one GPU of a type: the per-GPU share of
    the public cloud machine that carries it, which bounds what a container can be given."""

    cpu_cores: float
    memory_gib: float
    source: str


# Modal does not publish its per-container maximum: its guide says only that "a maximum
# is enforced at Function creation time ... Requests exceeding the maximum will be
# rejected with an InvalidError" (modal.com/docs/guide/resources, "How much can I
# request?"). A container with N GPUs of a type cannot get more than N/8 of the
# 8-GPU machine that carries them, so the lint uses that share, from the machine shapes
# the clouds publish (vCPU / 2 = physical cores, the unit Modal's `cpu=` counts).
HOST_SHARE_PER_GPU: Final[dict[str, HostShare]] = {
    "T4": HostShare(6.0, 48.0, "AWS g4dn.metal: 8 x T4, 96 vCPU, 384 GiB"),
    "L4": HostShare(6.0, 48.0, "GCP g2-standard-96: 8 x L4, 96 vCPU, 384 GB"),
    "A10": HostShare(12.0, 96.0, "AWS g5.48xlarge: 8 x A10G, 192 vCPU, 768 GiB"),
    "L40S": HostShare(12.0, 192.0, "AWS g6e.48xlarge: 8 x L40S, 192 vCPU, 1536 GiB"),
    "A100-40GB": HostShare(6.0, 85.0, "GCP a2-highgpu-8g: 8 x A100 40GB, 96 vCPU, 680 GB"),
    "A100-80GB": HostShare(6.0, 170.0, "GCP a2-ultragpu-8g: 8 x A100 80GB, 96 vCPU, 1360 GB"),
    "RTX-PRO-6000": HostShare(24.0, 180.0, "GCP g4-standard-384: 8 x RTX PRO 6000, 384 vCPU, 1440 GB"),
    "H100": HostShare(13.0, 234.0, "GCP a3-highgpu-8g: 8 x H100, 208 vCPU, 1872 GB"),
    "H200": HostShare(14.0, 369.0, "GCP a3-ultragpu-8g: 8 x H200, 224 vCPU, 2952 GB"),
    "B200": HostShare(14.0, 496.0, "GCP a4-highgpu-8g: 8 x B200, 224 vCPU, 3968 GB"),
}


class ResourcesSpec(StrictModel):
    """Host CPU and memory each serving container reserves (Modal `cpu=` / `memory=`).

    Both are optional: unset, they are derived from the model (``ModelSpec.serving_cpu`` and
    ``ModelSpec.serving_memory_mib``, which the Modal target passes to the container).
    """

    cpu: float | None = Field(
        default=None,
        gt=0,
        le=512,
        description=f"Physical CPU cores reserved per container. Default: {CPU_CORES_BASE:g} + "
        f"{CPU_CORES_PER_GPU:g} per GPU (vLLM's API server and engine core, plus one worker per GPU).",
    )
    memory_gib: float | None = Field(
        default=None,
        gt=0,
        le=4096,
        description="Host memory reserved per container, in GiB. Default: the weights' bytes when vLLM sleeps "
        f"before a GPU snapshot (sleep level 1 keeps them in pinned host memory) + {MEMORY_HEADROOM_GIB_BASE:g} GiB "
        f"+ {MEMORY_HEADROOM_GIB_PER_GPU:g} GiB per GPU, rounded up to a whole GiB.",
    )


def derived_cpu(gpus: int) -> float:
    """Cores for a vLLM server over ``gpus`` GPUs."""
    return CPU_CORES_BASE + CPU_CORES_PER_GPU * gpus


def memory_headroom_gib(gpus: int) -> float:
    """Host memory a vLLM server over ``gpus`` GPUs needs besides sleeping weights."""
    return MEMORY_HEADROOM_GIB_BASE + MEMORY_HEADROOM_GIB_PER_GPU * gpus


def derived_memory_gib(host_weights_gib: float, gpus: int) -> int:
    """Weights held in host memory plus the headroom, rounded up to a whole GiB."""
    return math.ceil(host_weights_gib + memory_headroom_gib(gpus))
