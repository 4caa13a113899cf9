"""Whether a model fits a GPU option: weights + KV cache + vLLM's overhead against the memory vLLM may take.

One arithmetic, two readers. The ``gpu`` lint (``spec/lints.py``) sizes the KV cache for one
sequence of ``max_model_len`` tokens, the least vLLM starts with; ``fleet new``'s GPU pick
(``modelfleet.sizing``) sizes it for ``--concurrency`` sequences of that length. Both call
:func:`gpu_fit`, so a GPU the pick calls a fit is one ``fleet validate`` accepts.

Memory is in GB (10^9 bytes), as the cards are sold and as ``GPU_MEMORY_GB`` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from modelfleet.spec.gpus import GPU_MEMORY_GB

# CUDA context, activations and sampler buffers vLLM needs beyond weights + KV cache.
RUNTIME_OVERHEAD_GB_PER_GPU: Final = 1.5


def kv_bytes_per_token(*, layers: int, kv_heads: int, head_dim: int, bytes_per_value: float) -> float:
    """KV-cache bytes one token takes: a key and a value vector per KV head per layer."""
    return 2 * layers * kv_heads * head_dim * bytes_per_value


@dataclass(frozen=True)
class GpuFit:
    """The memory a model needs on one GPU option against what vLLM may take of it."""

    gpu: str
    count: int
    utilization: float
    weights_gb: float
    kv_gb: float | None
    """KV cache sized for ``kv_for``; None when the architecture is unknown (only weights are checked)."""
    kv_for: str
    """What the KV cache was sized for, as text: ``at max_model_len=8192``."""

    @property
    def overhead_gb(self) -> float:
        """vLLM's own memory beyond weights and KV cache, per GPU times the GPUs."""
        return RUNTIME_OVERHEAD_GB_PER_GPU * self.count

    @property
    def need_gb(self) -> float:
        """Weights + KV cache + overhead."""
        return self.weights_gb + (self.kv_gb or 0.0) + self.overhead_gb

    @property
    def have_gb(self) -> float:
        """GPU memory x count x gpu_memory_utilization: what vLLM may allocate."""
        return GPU_MEMORY_GB[self.gpu] * self.count * self.utilization

    @property
    def fits(self) -> bool:
        """Whether the need is within what vLLM may allocate."""
        return self.need_gb <= self.have_gb

    @property
    def shortfall_gb(self) -> float:
        """GB missing (0 when it fits)."""
        return max(self.need_gb - self.have_gb, 0.0)

    @property
    def spare_gb(self) -> float:
        """GB left over for more KV cache (0 when it does not fit)."""
        return max(self.have_gb - self.need_gb, 0.0)

    def need_text(self) -> str:
        """``needs 38.2 GB (weights 16.1 GB + KV cache 8.6 GB at ... + overhead 1.5 GB)``."""
        kv_part = f" + KV cache {self.kv_gb:.1f} GB {self.kv_for}" if self.kv_gb is not None else ""
        return (
            f"needs {self.need_gb:.1f} GB (weights {self.weights_gb:.1f} GB{kv_part} + overhead "
            f"{self.overhead_gb:.1f} GB)"
        )

    def have_text(self) -> str:
        """``H100 x1 gives 80 GB x 1 x 0.90 = 72.0 GB``."""
        return (
            f"{self.gpu} x{self.count} gives {GPU_MEMORY_GB[self.gpu]:.0f} GB x {self.count} x "
            f"{self.utilization:.2f} = {self.have_gb:.1f} GB"
        )


def gpu_fit(gpu: str, count: int, *, weights_gb: float, kv_gb: float | None, kv_for: str, utilization: float) -> GpuFit:
    """How ``weights_gb`` of weights plus ``kv_gb`` of KV cache fit ``count`` x ``gpu`` at ``utilization``."""
    return GpuFit(gpu, count, utilization, weights_gb, kv_gb, kv_for)
