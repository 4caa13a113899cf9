"""The declaration layer: pydantic models of model.toml and volumes/*.toml, plus lints.

Beside them: the checks of fleet.toml's ``[defaults]`` (``defaults``), the cost model
(``cost``) and the JSON Schema editors read (``schema``).

Imports nothing else of the project, so every other piece can depend on it.
"""

from modelfleet.spec.gpus import GPU_MEMORY_GB, KNOWN_GPUS
from modelfleet.spec.lints import Finding, lint
from modelfleet.spec.model import (
    AuthSpec,
    GpuSpec,
    ImageSpec,
    LocalSpec,
    ModelSpec,
    PrivacySpec,
    ScalingSpec,
    SnapshotSpec,
    VllmSpec,
)
from modelfleet.spec.resources import ResourcesSpec
from modelfleet.spec.volume import VolumeSpec
from modelfleet.spec.weights import HuggingFaceWeights, LocalWeights, PypiWeights

__all__ = [
    "GPU_MEMORY_GB",
    "KNOWN_GPUS",
    "AuthSpec",
    "Finding",
    "GpuSpec",
    "HuggingFaceWeights",
    "ImageSpec",
    "LocalSpec",
    "LocalWeights",
    "ModelSpec",
    "PrivacySpec",
    "PypiWeights",
    "ResourcesSpec",
    "ScalingSpec",
    "SnapshotSpec",
    "VllmSpec",
    "VolumeSpec",
    "lint",
]
