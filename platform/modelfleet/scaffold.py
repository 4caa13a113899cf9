"""``fleet new``: a literate model folder from what a checkpoint says, validated before it is written.

The numbers come from the checkpoint (``modelfleet.checkpoint``) and the GPU pick
(``modelfleet.sizing``); the jinja2 templates turn them into a model.toml whose comments and a
README that say why this GPU, this context and this scaling floor. The folder is rendered into a
scratch directory and loaded through the catalog, lints included: it is copied into ``models/``
only when it validates, and an existing folder is never touched.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from modelfleet.catalog import load_catalog
from modelfleet.checkpoint.facts import Checkpoint
from modelfleet.checkpoint.tensors import SPEC_DTYPE
from modelfleet.errors import FleetError
from modelfleet.settings import FleetSettings
from modelfleet.sizing import Demand, GpuChoice
from modelfleet.spec.cost import HOURS_PER_MONTH
from modelfleet.spec.fit import kv_bytes_per_token
from modelfleet.spec.gpus import GPU_MEMORY_GB
from modelfleet.spec.model import VllmSpec
from modelfleet.spec.weights import BYTES_PER_PARAM

DEFAULT_MAX_MODEL_LEN = 8192
DEFAULT_CONCURRENCY = 8
MAX_CONTAINERS = 2
# Images one prompt may carry: a few pages or screenshots, bounded so one request cannot take
# the encoder cache. Video and audio, which this default does not budget for, are refused (0).
MM_LIMITS: Mapping[str, int] = {"image": 4, "video": 0, "audio": 0}


class ScaffoldError(FleetError):
    """The requested folder cannot be created; the message says why."""


@dataclass(frozen=True)
class NewModel:
    """Everything the folder is written from."""

    name: str
    checkpoint: Checkpoint
    demand: Demand
    choice: GpuChoice
    token_secret: str | None


def folder_is_free(settings: FleetSettings, name: str) -> Path:
    """``models/NAME``, refused when it exists: ``fleet new`` never touches an existing folder."""
    target = settings.root / "models" / name
    if target.exists():
        raise ScaffoldError(f"models/{name} already exists; pick another name or edit it (fleet new never touches it)")
    return target


def weights_dtype(checkpoint: Checkpoint) -> str:
    """The spec's ``weights.dtype``: the quantization's, else config.json's, else the headers' main type."""
    config = checkpoint.config
    if config.quantization and config.quantization.weight_dtype:
        return config.quantization.weight_dtype
    if config.torch_dtype:
        return config.torch_dtype
    return SPEC_DTYPE.get(checkpoint.weights.dominant_dtype(), "bfloat16")


def written_params_billion(checkpoint: Checkpoint) -> float:
    """The parameter count model.toml carries: three significant digits (8.03, 70.6, 0.135)."""
    return float(f"{checkpoint.weights.params_billion:.3g}")


def context_length(checkpoint: Checkpoint, requested: int | None) -> int:
    """``--max-model-len``, checked against the model's own limit; by default the limit, capped at 8192."""
    limit = checkpoint.config.max_position_embeddings
    if requested is None:
        return min(limit or DEFAULT_MAX_MODEL_LEN, DEFAULT_MAX_MODEL_LEN)
    if limit is not None and requested > limit:
        raise ScaffoldError(
            f"--max-model-len: {requested} is above the model's max_position_embeddings ({limit}); vLLM refuses it: "
            f"use <= {limit}"
        )
    if requested < 128:
        raise ScaffoldError(f"--max-model-len: {requested} is below 128, the least model.toml allows")
    return requested


def demand_for(checkpoint: Checkpoint, *, max_model_len: int, concurrency: int, settings: FleetSettings) -> Demand:
    """What the model needs of a GPU, in the numbers the written model.toml will carry.

    The weights count as the larger of the headers' bytes and what the lint derives from the
    written ``params_billion`` x ``dtype``, so a GPU that fits here also passes ``fleet validate``
    (an FP8 checkpoint keeps its embeddings in bf16: its bytes exceed params x 1).
    """
    config = checkpoint.config
    dtype = weights_dtype(checkpoint)
    estimate = written_params_billion(checkpoint) * BYTES_PER_PARAM[dtype]
    vllm_defaults = settings.defaults.get("vllm", {})
    utilization = float(
        vllm_defaults.get("gpu_memory_utilization", VllmSpec.model_fields["gpu_memory_utilization"].default)
    )
    return Demand(
        weights_gb=max(checkpoint.weights.gb, estimate),
        kv_bytes_per_token=kv_bytes_per_token(
            layers=config.num_hidden_layers,
            kv_heads=config.num_key_value_heads,
            head_dim=config.head_dim,
            bytes_per_value=2.0,
        ),
        max_model_len=max_model_len,
        concurrency=concurrency,
        utilization=utilization,
        compute_dtype=config.torch_dtype,
        weights_dtype=dtype,
        attention_heads=config.num_attention_heads,
    )


def mm_limits(modalities: tuple[str, ...]) -> str:
    """The JSON vLLM's ``--limit-mm-per-prompt`` takes, for the modalities the model has."""
    parts = [f'"{modality}": {MM_LIMITS.get(modality, 1)}' for modality in modalities]
    return "{" + ", ".join(parts) + "}"


def scaffold_model(settings: FleetSettings, model: NewModel) -> Path:
    """Render models/NAME/ and return it, or raise with the problems and write nothing."""
    target = folder_is_free(settings, model.name)
    env = Environment(
        loader=PackageLoader("modelfleet", "templates/model"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["comment"] = toml_comment
    values = template_values(settings, model)
    with tempfile.TemporaryDirectory() as scratch:
        staged_models = Path(scratch) / "models"
        staged = staged_models / model.name
        staged.mkdir(parents=True)
        for template in ("model.toml.j2", "README.md.j2", "golden.toml.j2"):
            (staged / template.removesuffix(".j2")).write_text(env.get_template(template).render(**values))
        catalog = load_catalog(settings, models_dir=staged_models)
        if catalog.errors:
            lines = "; ".join(f"{p.field}: {p.message}" for p in catalog.errors)
            raise ScaffoldError(f"models/{model.name} would not validate, nothing written: {lines}")
        if target.exists():  # appeared while the hub was read: still never touched
            raise ScaffoldError(f"models/{model.name} appeared meanwhile; nothing written")
        shutil.copytree(staged, target)
    return target


def toml_comment(text: str) -> str:
    """A paragraph as ``# `` lines of at most 88 characters, for model.toml."""
    return "\n".join(f"# {line}" for line in textwrap.wrap(text, 86, break_on_hyphens=False))


def template_values(settings: FleetSettings, model: NewModel) -> dict[str, Any]:
    """The numbers and sentences the templates print."""
    checkpoint, demand, choice = model.checkpoint, model.demand, model.choice
    config, weights, winner = checkpoint.config, checkpoint.weights, choice.winner
    concurrency = demand.concurrency
    per_token = demand.kv_bytes_per_token
    price = winner.price_per_gpu
    source = "huggingface" if checkpoint.repo and checkpoint.revision else "local"
    if source == "huggingface":
        source_line = f"{checkpoint.repo} @ {checkpoint.revision}"
        source_sentence = f"`{checkpoint.repo}` at commit `{checkpoint.revision}`"
    else:
        source_line = f"local checkout {checkpoint.local_path}"
        source_sentence = f"The local checkout `{checkpoint.local_path}`"
    fallbacks = [option.ref for option in choice.fallbacks]
    return {
        "name": model.name,
        "app_prefix": settings.app_prefix,
        "source": source,
        "source_line": source_line,
        "source_sentence": source_sentence,
        "description": f"{checkpoint.repo or model.name} on {winner.ref}",
        "repo": checkpoint.repo,
        "revision": checkpoint.revision or "",
        "requested": checkpoint.requested,
        "local_path": str(Path(checkpoint.local_path).resolve()) if checkpoint.local_path else "",
        "weight_files": weights.files,
        "weights_gb": f"{weights.gb:.1f}",
        "dtype_summary": weights.dtype_summary(),
        "params_billion": written_params_billion(checkpoint),
        "dtype": demand.weights_dtype,
        "quantization": config.quantization.label if config.quantization else "",
        "layers": config.num_hidden_layers,
        "kv_heads": config.num_key_value_heads,
        "head_dim": config.head_dim,
        "kv_kb_per_token": f"{per_token / 1024:.0f}",
        "max_positions": config.max_position_embeddings,
        "architectures": ", ".join(config.architectures) or "no architectures listed",
        "modalities": " and ".join(config.modalities),
        "mm_args": mm_limits(config.modalities) if config.multimodal else "",
        "token_secret": model.token_secret if checkpoint.needs_token else None,
        "access": "gated" if checkpoint.gated else "private",
        "gpu_type": winner.gpu,
        "gpu_count": winner.count,
        "gpu_memory_gb": f"{GPU_MEMORY_GB[winner.gpu]:.0f}",
        "need_text": winner.fit.need_text(),
        "need_sentence": winner.fit.need_text()[0].upper() + winner.fit.need_text()[1:],
        "have_text": winner.fit.have_text(),
        "why": choice.reason,
        "fallbacks": fallbacks,
        "fallback_text": ", ".join(
            f"{o.ref} (${o.hourly:.2f}/h, {o.fit.spare_gb:.1f} GB spare)" for o in choice.fallbacks
        ),
        "weighed": [
            {"ref": o.ref, "hourly": _price(o.price_per_gpu, o.count), "verdict": o.verdict()} for o in choice.weighed
        ],
        "max_model_len": demand.max_model_len,
        "kv_gb_per_sequence": f"{per_token * demand.max_model_len / 1e9:.1f}",
        "kv_gb": f"{demand.kv_gb:.1f}",
        "concurrency": concurrency,
        "target": max(1, math.ceil(concurrency / 2)),
        "max_containers": MAX_CONTAINERS,
        "ceiling": f"{MAX_CONTAINERS * winner.hourly:,.2f}",
        "gpu_price": f"{price:.2f}" if price is not None else "(no price in fleet.toml)",
        "container_hourly": f"{winner.hourly:,.2f}",
        "container_monthly": f"{winner.hourly * HOURS_PER_MONTH:,.0f}",
        "prices_date": settings.prices.date,
        "prices_source": settings.prices.source,
    }


def _price(per_gpu: float | None, count: int) -> str:
    return f"{per_gpu * count:.2f}" if per_gpu is not None else "no price"
