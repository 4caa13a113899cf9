"""The GPU types Modal rents, with the numbers the fit check and cost report need.

Modal only rejects an unknown GPU name at deploy time, on its server; keeping the
known list here lets ``fleet validate`` reject a typo on a laptop, with the list.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

GpuType = Literal[
    "T4",
    "L4",
    "A10",
    "L40S",
    "A100-40GB",
    "A100-80GB",
    "RTX-PRO-6000",
    "H100",
    "H200",
    "B200",
]

KNOWN_GPUS: Final[tuple[str, ...]] = get_args(GpuType)

# Usable device memory in GB (10^9 bytes), as the cards report it.
GPU_MEMORY_GB: Final[dict[str, float]] = {
    "T4": 16.0,
    "L4": 24.0,
    "A10": 24.0,
    "L40S": 48.0,
    "A100-40GB": 40.0,
    "A100-80GB": 80.0,
    "RTX-PRO-6000": 96.0,
    "H100": 80.0,
    "H200": 141.0,
    "B200": 180.0,
}

# CUDA compute capability of each type (NVIDIA's list, developer.nvidia.com/cuda-gpus). It decides
# which number formats run natively: bf16 needs 8.0 (vLLM casts a bf16 checkpoint to float16 on a T4,
# which can overflow), FP8 W8A8 needs 8.9 and runs weight-only (FP8 Marlin) from 7.5 down (vLLM docs,
# features/quantization/fp8: "FP8 computation is supported on NVIDIA GPUs with compute capability
# >= 8.9 ... FP8 models will run on compute capability >= 7.5 (Turing) as weight-only W8A16").
COMPUTE_CAPABILITY: Final[dict[str, float]] = {
    "T4": 7.5,
    "L4": 8.9,
    "A10": 8.6,
    "L40S": 8.9,
    "A100-40GB": 8.0,
    "A100-80GB": 8.0,
    "RTX-PRO-6000": 12.0,
    "H100": 9.0,
    "H200": 9.0,
    "B200": 10.0,
}
BF16_MIN_CAPABILITY: Final = 8.0
FP8_NATIVE_MIN_CAPABILITY: Final = 8.9

# vLLM's sleep mode (and so the GPU snapshot path) needs CUDA; every Modal GPU is
# CUDA, so this is true for all of them. Kept explicit for the snapshot lint.
SLEEP_MODE_CAPABLE: Final[frozenset[str]] = frozenset(KNOWN_GPUS)


def parse_gpu_ref(ref: str) -> tuple[str, int]:
    """Split Modal's ``"H100:2"`` notation into ``("H100", 2)``; a bare type means one GPU."""
    name, _, count = ref.partition(":")
    return name, int(count) if count else 1
