"""Which CUDA major each vLLM release is built for, and which CUDA a base image carries.

vLLM's default PyPI wheel links one CUDA runtime (``libcudart.so.12`` or ``.so.13``)
and JIT-builds some kernels (FlashInfer, DeepGEMM) with the image's nvcc: a base
image of another CUDA major gives those builds the wrong toolkit. The table below is
the one place that knows the pairing; each row names where it comes from. A vLLM
version outside every row is *unknown*, and the lint says so instead of passing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from packaging.version import Version

# vLLM's own image: its tag is the vLLM version it carries.
VLLM_OPENAI_REPO: Final = "vllm/vllm-openai"
# NVIDIA's CUDA images, on Docker Hub or NGC: the tag starts with the CUDA version.
CUDA_REPOS: Final[frozenset[str]] = frozenset({"nvidia/cuda", "nvcr.io/nvidia/cuda"})
# A CUDA devel image per major, for the fix a lint message suggests (tags that exist on Docker Hub).
DEVEL_IMAGE_FOR_CUDA: Final[dict[int, str]] = {
    12: "nvidia/cuda:12.8.1-devel-ubuntu22.04",
    13: "nvidia/cuda:13.0.1-devel-ubuntu22.04",
}
_CUDA_TAG = re.compile(r"^(\d+)\.(\d+)(?:\.\d+)?-")
_VLLM_TAG = re.compile(r"^v?(\d+\.\d+\.\d+(?:\.post\d+)?)$")


@dataclass(frozen=True)
class VllmCudaRow:
    """vLLM releases ``first <= version < before`` ship default wheels built for CUDA ``cuda_major``."""

    first: Version
    before: Version
    cuda_major: int
    source: str


VLLM_CUDA: Final[tuple[VllmCudaRow, ...]] = (
    VllmCudaRow(
        first=Version("0.2.2"),
        before=Version("0.20.0"),
        cuda_major=12,
        # 12.1 wheels on PyPI from 0.2.2 (vllm-project/vllm#1596), 12.4 the default from
        # January 2025 (vllm-project/vllm#12098), 12.8/12.9 later; all CUDA 12 until 0.20.
        source="vllm-project/vllm#1596, vllm-project/vllm#12098",
    ),
    VllmCudaRow(
        first=Version("0.20.0"),
        before=Version("0.26.0"),
        cuda_major=13,
        # "The vLLM 0.20.0 release has switched to CUDA 13 for the default wheels"
        # (vllm-project/router#154); 0.24.0's unsuffixed wheel is the cu130 build, the
        # CUDA 12 one is `+cu129` (vllm-project/vllm#47628); 0.25.0 links libcudart.so.13
        # (notes/modal.md, "CUDA"). Extend `before` when a newer release is checked.
        source="vllm-project/router#154, vllm-project/vllm#47628, PyPI wheel of vllm 0.25.0",
    ),
)


def vllm_cuda_row(vllm_version: str) -> VllmCudaRow | None:
    """The row that covers this vLLM version, or None when the table does not know it.

    Compared as PEP 440 versions (``packaging``), so a pre-release of a row's first
    version (``0.20.0rc1``) belongs to the row before it, as its wheels do.
    """
    wanted = Version(vllm_version)
    return next((row for row in VLLM_CUDA if row.first <= wanted < row.before), None)


def base_cuda_version(base: str) -> tuple[int, int] | None:
    """(major, minor) of an NVIDIA CUDA image tag like ``nvidia/cuda:13.0.1-devel-ubuntu22.04``, else None."""
    repo, _, tag = base.rpartition(":")
    if repo not in CUDA_REPOS:
        return None
    match = _CUDA_TAG.match(tag)
    return (int(match.group(1)), int(match.group(2))) if match else None


def vllm_openai_tag_version(base: str) -> str | None:
    """The vLLM version a ``vllm/vllm-openai:vX.Y.Z`` base carries, ``""`` for another tag of that repo,
    None for any other image."""
    repo, _, tag = base.rpartition(":")
    if repo != VLLM_OPENAI_REPO:
        return None
    match = _VLLM_TAG.match(tag)
    return match.group(1) if match else ""
