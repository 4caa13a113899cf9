"""Synthetic checkpoints for ``fleet new``'s tests: config.json and safetensors headers of real shapes.

What is real and what is not, said once for every test that uses these:

* the config.json fields are the ones transformers writes for the model family named;
* the safetensors headers are well-formed (8-byte little-endian length, JSON, ``data_offsets``
  consecutive and equal to shape x dtype size), with the tensor names and shapes of that family,
  so an 8B model's headers declare 8B parameters and ~16 GB of data;
* the tensor *data* does not exist. On the loopback hub each shard is a ``HeaderOnly`` file: its
  declared size is the real one, only the header is stored, and the hub refuses a read past the
  header beyond 1 MiB, so these tests also show that ``fleet new`` never downloads weights. For
  ``--from-dir`` the files are complete, with tiny shapes (the data bytes are zeros).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from tests.support.hf_hub import HeaderOnly

DTYPE_BYTES = {"BF16": 2, "F16": 2, "F32": 4, "F8_E4M3": 1, "I32": 4, "U8": 1}


@dataclass(frozen=True)
class Shape:
    """A decoder-only transformer's dimensions (a Llama / Qwen2 layout)."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    head_dim: int = 128
    max_positions: int = 131072


LLAMA_8B = Shape(layers=32, hidden=4096, intermediate=14336, heads=32, kv_heads=8, vocab=128256)
TINY = Shape(layers=2, hidden=64, intermediate=128, heads=4, kv_heads=2, vocab=256, head_dim=16, max_positions=2048)

Tensors = dict[str, tuple[str, tuple[int, ...]]]


def decoder_tensors(shape: Shape, *, linear_dtype: str = "BF16", fp8_scales: bool = False) -> Tensors:
    """The tensors of a Llama-layout decoder; FP8 checkpoints keep embeddings, norms and lm_head in BF16."""
    q = shape.heads * shape.head_dim
    kv = shape.kv_heads * shape.head_dim
    tensors: Tensors = {"model.embed_tokens.weight": ("BF16", (shape.vocab, shape.hidden))}
    for layer in range(shape.layers):
        prefix = f"model.layers.{layer}"
        linears = {
            "self_attn.q_proj": (q, shape.hidden),
            "self_attn.k_proj": (kv, shape.hidden),
            "self_attn.v_proj": (kv, shape.hidden),
            "self_attn.o_proj": (shape.hidden, q),
            "mlp.gate_proj": (shape.intermediate, shape.hidden),
            "mlp.up_proj": (shape.intermediate, shape.hidden),
            "mlp.down_proj": (shape.hidden, shape.intermediate),
        }
        for name, dims in linears.items():
            tensors[f"{prefix}.{name}.weight"] = (linear_dtype, dims)
            if fp8_scales:
                tensors[f"{prefix}.{name}.weight_scale"] = ("F32", ())
                tensors[f"{prefix}.{name}.input_scale"] = ("F32", ())
        tensors[f"{prefix}.input_layernorm.weight"] = ("BF16", (shape.hidden,))
        tensors[f"{prefix}.post_attention_layernorm.weight"] = ("BF16", (shape.hidden,))
    tensors["model.norm.weight"] = ("BF16", (shape.hidden,))
    tensors["lm_head.weight"] = ("BF16", (shape.vocab, shape.hidden))
    return tensors


def vision_tensors(*, depth: int, hidden: int, out: int) -> Tensors:
    """A ViT-style vision tower (Qwen2.5-VL's ``visual.*`` layout, abridged)."""
    tensors: Tensors = {"visual.patch_embed.proj.weight": ("BF16", (hidden, 3, 2, 14, 14))}
    for block in range(depth):
        prefix = f"visual.blocks.{block}"
        tensors[f"{prefix}.attn.qkv.weight"] = ("BF16", (3 * hidden, hidden))
        tensors[f"{prefix}.attn.proj.weight"] = ("BF16", (hidden, hidden))
        tensors[f"{prefix}.mlp.gate_proj.weight"] = ("BF16", (4 * hidden, hidden))
        tensors[f"{prefix}.mlp.down_proj.weight"] = ("BF16", (hidden, 4 * hidden))
    tensors["visual.merger.mlp.2.weight"] = ("BF16", (out, 4 * hidden))
    return tensors


def parameters(tensors: Tensors) -> int:
    """Parameters the tensors hold, scales excluded (as fleet new counts them)."""
    return sum(math.prod(dims) for name, (_, dims) in tensors.items() if not name.endswith("_scale"))


def data_bytes(tensors: Tensors) -> int:
    """Bytes of tensor data the headers declare."""
    return sum(math.prod(dims) * DTYPE_BYTES[dtype] for dtype, dims in tensors.values())


def header(tensors: Tensors) -> tuple[bytes, int]:
    """A safetensors file's first bytes (length + JSON header) and the whole file's size."""
    entries: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, dims) in tensors.items():
        size = math.prod(dims) * DTYPE_BYTES[dtype]
        entries[name] = {"dtype": dtype, "shape": list(dims), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(entries, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes with spaces
    prefix = struct.pack("<Q", len(raw)) + raw
    return prefix, len(prefix) + offset


def complete_file(tensors: Tensors) -> bytes:
    """A whole safetensors file (zeros for data): for small shapes read with --from-dir."""
    prefix, size = header(tensors)
    return prefix + bytes(size - len(prefix))


def sharded_header_only(tensors: Tensors, shards: int) -> dict[str, bytes | HeaderOnly]:
    """``model-0000k-of-0000n.safetensors`` header-only shards plus the index that maps tensors to them."""
    names = list(tensors)
    per = math.ceil(len(names) / shards)
    files: dict[str, bytes | HeaderOnly] = {}
    weight_map: dict[str, str] = {}
    for index in range(shards):
        part = {name: tensors[name] for name in names[index * per : (index + 1) * per]}
        filename = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        prefix, size = header(part)
        files[filename] = HeaderOnly(prefix, size)
        weight_map.update(dict.fromkeys(part, filename))
    index_json = {"metadata": {"total_size": data_bytes(tensors)}, "weight_map": weight_map}
    files["model.safetensors.index.json"] = json.dumps(index_json).encode()
    return files


def llama_config(shape: Shape, *, extra: Mapping[str, object] | None = None) -> bytes:
    """config.json of a Llama-layout model, as transformers writes it."""
    config: dict[str, object] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": shape.hidden,
        "intermediate_size": shape.intermediate,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "head_dim": shape.head_dim,
        "max_position_embeddings": shape.max_positions,
        "vocab_size": shape.vocab,
        "torch_dtype": "bfloat16",
        **(extra or {}),
    }
    return json.dumps(config, indent=2).encode()
