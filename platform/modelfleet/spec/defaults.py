"""fleet.toml's ``[defaults]``: model.toml values every model inherits, checked where they are written.

A value under ``[defaults]`` is merged into every model.toml before the model validates, so a
typo there would otherwise come back as the same error in every model folder. Checking the
table once, against the same pydantic models, reports it once, as ``fleet.toml:
defaults.<field>: <message>``. Required fields (``vllm.max_model_len``, ``gpu.type``, ...) may
be absent here: each model.toml supplies them.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from modelfleet.spec.errors import describe_errors
from modelfleet.spec.model import ModelSpec

# Keys that describe one model and never a fleet: the weights (source, pinned revision) and
# the line `fleet list` shows.
PER_MODEL_KEYS: dict[str, str] = {
    "weights": "the weights are per model (source, pinned revision); declare them in each model.toml",
    "description": "the description is per model; write it in each model.toml",
}


def defaults_problems(defaults: dict[str, Any]) -> list[tuple[str, str]]:
    """(field path, message) for every value in ``defaults`` that no model could inherit."""
    problems = [(key, reason) for key, reason in PER_MODEL_KEYS.items() if key in defaults]
    fleet_wide = {key: value for key, value in defaults.items() if key not in PER_MODEL_KEYS}
    try:
        ModelSpec.model_validate(fleet_wide)
    except ValidationError as error:
        described = describe_errors(error, ModelSpec)
        problems += [found for found, item in zip(described, error.errors(), strict=True) if item["type"] != "missing"]
    return problems
