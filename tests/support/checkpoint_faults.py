"""Faults the quality gate must catch, made from the demo model's seeded checkpoint.

Each makes a copy of the checkpoint folder (the tokenizer and config files copied as they
are) with one thing changed, as a broken seed, a bad conversion or a bad template would:

- ``perturbed_copy``: one weight tensor with seeded Gaussian noise added (10 % of its std);
- ``float8_copy``: every 2-D weight rounded through float8 (e4m3, one scale per tensor)
  and stored back in bfloat16 -- a lower-precision conversion of the same checkpoint;
- ``broken_chat_template``: a chat template that drops the system prompt and the role
  markers, as a template from the wrong model family would (vLLM ``--chat-template``).

Used by tests/e2e/test_quality_gate.py and bench/quality_gate.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

WEIGHTS_FILE = "model.safetensors"
# A mid-network MLP projection: a change there reaches every later layer.
PERTURBED_TENSOR = "model.layers.15.mlp.down_proj.weight"
# Noise std as a share of the tensor's own std. 1 % moved the fingerprint by 0.25 nats at most, as
# much as batching with other requests does (bench/results/quality-gate/README.md): below what a
# gate that tolerates live traffic can tell apart. 10 % is a corrupted tensor the gate must catch.
PERTURBATION = 0.10
FLOAT8_MAX = 448.0  # largest finite float8_e4m3fn value
# Plain text turns, no <|im_start|> markers and no system prompt: what the model was never trained on.
BROKEN_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}"
    "{{ message['role'] | capitalize }}: {{ message['content'] }}\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


def _copy_without_weights(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.name != WEIGHTS_FILE and item.is_file():
            shutil.copy2(item, target / item.name)


def perturbed_copy(source: Path, target: Path, *, seed: int = 0, scale: float = PERTURBATION) -> Path:
    """``target``: the checkpoint with ``PERTURBED_TENSOR`` + N(0, (``scale`` x its std)^2) noise."""
    import torch
    from safetensors.torch import load_file, save_file

    if (target / WEIGHTS_FILE).is_file():
        return target
    _copy_without_weights(source, target)
    tensors = load_file(str(source / WEIGHTS_FILE))
    weight = tensors[PERTURBED_TENSOR].float()
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(weight.shape, generator=generator) * weight.std() * scale
    tensors[PERTURBED_TENSOR] = (weight + noise).to(tensors[PERTURBED_TENSOR].dtype)
    save_file(tensors, str(target / WEIGHTS_FILE), metadata={"format": "pt"})
    return target


def float8_copy(source: Path, target: Path) -> Path:
    """``target``: every 2-D weight quantized to float8 e4m3 (per-tensor scale) and back to its dtype."""
    import torch
    from safetensors.torch import load_file, save_file

    if (target / WEIGHTS_FILE).is_file():
        return target
    _copy_without_weights(source, target)
    tensors = load_file(str(source / WEIGHTS_FILE))
    for name, tensor in tensors.items():
        if tensor.ndim != 2:
            continue
        values = tensor.float()
        scale = values.abs().max().clamp(min=1e-12) / FLOAT8_MAX
        rounded = (values / scale).to(torch.float8_e4m3fn).float() * scale
        tensors[name] = rounded.to(tensor.dtype)
    save_file(tensors, str(target / WEIGHTS_FILE), metadata={"format": "pt"})
    return target


def broken_chat_template(folder: Path) -> Path:
    """A Jinja chat template file for ``--chat-template`` that mislabels every turn."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "broken_template.jinja"
    path.write_text(BROKEN_TEMPLATE)
    return path
