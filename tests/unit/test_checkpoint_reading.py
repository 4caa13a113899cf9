"""What ``fleet new`` reads from config.json and safetensors headers (``modelfleet.checkpoint``).

The config dicts follow what transformers writes for each family (field names and nesting);
the header entries are hand-written safetensors entries with consistent offsets.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest

from modelfleet.checkpoint.config import parse_config
from modelfleet.checkpoint.facts import CheckpointError
from modelfleet.checkpoint.tensors import TensorEntry, entries_from_header, read_local_header, weights_facts
from tests.support.checkpoints import TINY, complete_file, decoder_tensors

LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "hidden_size": 4096,
    "max_position_embeddings": 131072,
    "torch_dtype": "bfloat16",
}


def test_head_dim_defaults_to_hidden_size_over_heads_and_kv_heads_to_heads() -> None:
    config = parse_config({k: v for k, v in LLAMA.items() if k != "num_key_value_heads"}, where="config.json")
    assert (config.head_dim, config.num_key_value_heads, config.max_position_embeddings) == (128, 32, 131072)
    assert config.torch_dtype == "bfloat16" and config.quantization is None and not config.multimodal


def test_a_multimodal_config_is_read_from_text_config_and_its_encoders() -> None:
    """Gemma 3 / Llama 4 / newer Qwen-VL configs nest the language model under text_config."""
    data = {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "text_config": {**LLAMA, "num_hidden_layers": 34, "head_dim": 256, "num_key_value_heads": 4},
        "vision_config": {"hidden_size": 1152},
        "dtype": "bfloat16",
    }
    config = parse_config(data, where="config.json")
    assert (config.num_hidden_layers, config.num_key_value_heads, config.head_dim) == (34, 4, 256)
    assert config.modalities == ("image",) and config.torch_dtype == "bfloat16"
    with_video = parse_config({**data, "video_token_id": 7, "audio_config": {}}, where="config.json")
    assert with_video.modalities == ("image", "video", "audio")


@pytest.mark.parametrize(
    ("quantization_config", "label", "dtype", "bits"),
    [
        ({"quant_method": "fp8", "activation_scheme": "dynamic"}, "FP8", "fp8", 8),
        ({"quant_method": "awq", "bits": 4, "group_size": 128}, "AWQ 4-bit", "int4", 4),
        ({"quant_method": "gptq", "bits": 8}, "GPTQ 8-bit", "int8", 8),
        ({"quant_method": "bitsandbytes", "load_in_4bit": True}, "bitsandbytes 4-bit", "int4", 4),
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {"group_0": {"weights": {"num_bits": 8, "type": "float"}}},
            },
            "compressed-tensors FP8",
            "fp8",
            8,
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int"}}},
            },
            "compressed-tensors 4-bit int",
            "int4",
            4,
        ),
        ({"quant_method": "hqq"}, "hqq", None, None),
    ],
)
def test_quantization_config_becomes_the_weights_dtype(
    quantization_config: dict[str, object], label: str, dtype: str | None, bits: int | None
) -> None:
    quantization = parse_config({**LLAMA, "quantization_config": quantization_config}, where="c").quantization
    assert quantization is not None
    assert (quantization.label, quantization.weight_dtype, quantization.bits) == (label, dtype, bits)


def test_a_config_without_the_decoder_fields_is_refused_with_the_field() -> None:
    with pytest.raises(
        CheckpointError, match=re.escape("config.json: num_hidden_layers: is None, not a positive integer")
    ):
        parse_config({"architectures": ["T5ForConditionalGeneration"]}, where="config.json")


def test_packed_int4_weights_count_eight_parameters_per_int32_and_scales_none() -> None:
    """AWQ stores 8 int4 values per int32 in ``qweight``; ``scales``/``qzeros`` are bookkeeping."""
    entries = [
        TensorEntry("model.layers.0.mlp.up_proj.qweight", "I32", (4096, 1792), 4096 * 1792 * 4),
        TensorEntry("model.layers.0.mlp.up_proj.scales", "F16", (32, 14336), 32 * 14336 * 2),
        TensorEntry("model.layers.0.mlp.up_proj.qzeros", "I32", (32, 1792), 32 * 1792 * 4),
        TensorEntry("model.embed_tokens.weight", "F16", (1000, 4096), 1000 * 4096 * 2),
    ]
    facts = weights_facts(entries, files=1, bits=4)
    assert facts.parameters == 4096 * 14336 + 1000 * 4096
    assert facts.total_bytes == sum(e.nbytes for e in entries) and facts.dominant_dtype() == "I32"


def test_header_offsets_that_disagree_with_the_shape_are_refused() -> None:
    header = {"w": {"dtype": "BF16", "shape": [4, 4], "data_offsets": [0, 16]}}
    with pytest.raises(CheckpointError, match="data_offsets span 16 bytes but BF16 x \\[4, 4\\] is 32"):
        entries_from_header(header, where="model.safetensors")


def test_a_local_header_is_read_without_the_data_and_checked_against_the_file_size(tmp_path: Path) -> None:
    tensors = decoder_tensors(TINY)
    file = tmp_path / "model.safetensors"
    file.write_bytes(complete_file(tensors))
    entries = read_local_header(file)
    assert {e.name for e in entries} == set(tensors)
    assert sum(e.nbytes for e in entries) == file.stat().st_size - 8 - struct.unpack("<Q", file.read_bytes()[:8])[0]
    pointer = tmp_path / "lfs-pointer.safetensors"
    pointer.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 123\n")
    with pytest.raises(CheckpointError, match="does not fit the"):
        read_local_header(pointer)
    not_json = tmp_path / "not-json.safetensors"
    not_json.write_bytes(struct.pack("<Q", 4) + b"{{{{")
    with pytest.raises(CheckpointError, match="the header is not JSON"):
        read_local_header(not_json)
    assert json.loads(file.read_bytes()[8 : 8 + struct.unpack("<Q", file.read_bytes()[:8])[0]])["__metadata__"]
