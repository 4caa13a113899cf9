"""What ``fleet new`` reads from a checkpoint's ``config.json``: attention shape, context, number format, modalities.

The fields are the ones transformers writes (``PretrainedConfig``): ``num_hidden_layers``,
``num_attention_heads``, ``num_key_value_heads`` (absent means no GQA: one KV head per attention
head), ``head_dim`` (absent means ``hidden_size / num_attention_heads``), ``max_position_embeddings``,
``torch_dtype`` (renamed ``dtype`` by newer transformers) and ``quantization_config``. A multimodal
model nests its language model's fields under ``text_config`` and declares its encoders as
``vision_config`` / ``audio_config``; the KV cache belongs to the language model, so its shape is
read from ``text_config`` when there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelfleet.checkpoint.facts import CheckpointError

# transformers' torch dtype names -> the spec's weights.dtype.
_TORCH_DTYPES = {"bfloat16": "bfloat16", "float16": "float16", "float32": "float32", "half": "float16"}


@dataclass(frozen=True)
class Quantization:
    """The checkpoint's ``quantization_config``: how vLLM loads it (it reads this block itself)."""

    method: str
    """``quant_method`` as written: fp8, awq, gptq, compressed-tensors, bitsandbytes, ..."""
    label: str
    """For people: ``FP8``, ``AWQ 4-bit``, ``compressed-tensors W4A16 (int)``."""
    weight_dtype: str | None
    """The spec's ``weights.dtype`` for the quantized weights; None when the method is unknown here."""
    bits: int | None
    """Bits per quantized weight, when the config says (packed int tensors hold 32 / bits values)."""


@dataclass(frozen=True)
class ModelConfig:
    """The numbers of one ``config.json`` that size and describe a deployment."""

    architectures: tuple[str, ...]
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    max_position_embeddings: int | None
    torch_dtype: str | None
    """The spec dtype of the unquantized weights (``torch_dtype``), when declared."""
    quantization: Quantization | None
    modalities: tuple[str, ...]
    """Inputs beyond text, in vLLM's modality names (``image``, ``video``, ``audio``); empty for text-only."""

    @property
    def multimodal(self) -> bool:
        """Whether the model takes inputs other than text."""
        return bool(self.modalities)


def parse_config(data: Mapping[str, Any], *, where: str) -> ModelConfig:
    """Read the fields that matter from a parsed ``config.json``; ``where`` names it in errors."""
    text = data.get("text_config") if isinstance(data.get("text_config"), Mapping) else None
    merged: dict[str, Any] = {**data, **(text or {})}
    layers = _positive_int(merged, "num_hidden_layers", where)
    heads = _positive_int(merged, "num_attention_heads", where)
    kv_heads = _positive_int(merged, "num_key_value_heads", where) if "num_key_value_heads" in merged else heads
    if merged.get("head_dim"):
        head_dim = _positive_int(merged, "head_dim", where)
    else:
        head_dim = _positive_int(merged, "hidden_size", where) // heads
    max_positions = merged.get("max_position_embeddings")
    dtype = merged.get("torch_dtype") or merged.get("dtype") or data.get("torch_dtype") or data.get("dtype")
    return ModelConfig(
        architectures=tuple(str(a) for a in data.get("architectures") or ()),
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        max_position_embeddings=max_positions if isinstance(max_positions, int) and max_positions > 0 else None,
        torch_dtype=_TORCH_DTYPES.get(str(dtype)) if dtype else None,
        quantization=_quantization(data.get("quantization_config") or merged.get("quantization_config")),
        modalities=_modalities(data),
    )


def _positive_int(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CheckpointError(
            f"{where}: {key}: is {value!r}, not a positive integer; fleet new sizes the KV cache from it "
            "(a model without a transformer decoder config cannot be sized here)"
        )
    return value


def _quantization(config: object) -> Quantization | None:
    """The checkpoint's quantization as the spec's weight dtype, from the formats vLLM documents."""
    if not isinstance(config, Mapping):
        return None
    method = str(config.get("quant_method", "unknown")).lower()
    bits = config.get("bits") if isinstance(config.get("bits"), int) else None
    if method == "fp8":
        return Quantization(method, "FP8", "fp8", 8)
    if method in ("awq", "gptq", "awq_marlin", "gptq_marlin"):
        width = bits or 4
        return Quantization(method, f"{method.split('_')[0].upper()} {width}-bit", _int_dtype(width), width)
    if method == "bitsandbytes":
        width = 4 if config.get("load_in_4bit") else 8
        return Quantization(method, f"bitsandbytes {width}-bit", _int_dtype(width), width)
    if method == "compressed-tensors":
        return _compressed_tensors(config)
    if method == "mxfp4":
        return Quantization(method, "MXFP4", "int4", 4)
    return Quantization(method, method, None, bits)


def _compressed_tensors(config: Mapping[str, Any]) -> Quantization:
    """llm-compressor's format: each config group says the weights' bit width and type (int or float)."""
    groups = config.get("config_groups")
    weights: Mapping[str, Any] = {}
    if isinstance(groups, Mapping):
        for group in groups.values():
            if isinstance(group, Mapping) and isinstance(group.get("weights"), Mapping):
                weights = group["weights"]
                break
    width = weights.get("num_bits") if isinstance(weights.get("num_bits"), int) else None
    kind = str(weights.get("type", "int"))
    if width == 8 and kind == "float":
        return Quantization("compressed-tensors", "compressed-tensors FP8", "fp8", 8)
    if width in (4, 8):
        return Quantization("compressed-tensors", f"compressed-tensors {width}-bit {kind}", _int_dtype(width), width)
    return Quantization("compressed-tensors", "compressed-tensors", None, width)


def _int_dtype(bits: int) -> str:
    return "int4" if bits <= 4 else "int8"


def _modalities(data: Mapping[str, Any]) -> tuple[str, ...]:
    """Inputs beyond text. A vision encoder means images; a video token (Qwen2-VL and kin) means video too."""
    found = []
    if isinstance(data.get("vision_config"), Mapping):
        found.append("image")
        if "video_token_id" in data or "video_token_index" in data:
            found.append("video")
    if isinstance(data.get("audio_config"), Mapping):
        found.append("audio")
    return tuple(found)
