"""The JSON Schemas of model.toml and golden.toml, checked in so editors autocomplete and validate.

Editors (e.g. Even Better TOML / taplo) pick it up through a ``#:schema`` comment or
their settings; a test fails when the checked-in file drifts from the models.
"""

from __future__ import annotations

import json
from pathlib import Path

from modelfleet.spec.model import ModelSpec

SCHEMA_PATH = Path("models/model.schema.json")


def render_schema() -> str:
    """The schema as stable, pretty JSON text."""
    schema = ModelSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "modelfleet model.toml"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


GOLDEN_SCHEMA_PATH = Path("models/golden.schema.json")


def render_golden_schema() -> str:
    """The schema of golden.toml (``spec.golden``), as stable, pretty JSON text."""
    from modelfleet.spec.golden import GoldenSpec

    schema = GoldenSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "modelfleet golden.toml"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


# Every checked-in schema and how to render it: `fleet schema` writes (and --check compares) each.
SCHEMAS = {SCHEMA_PATH: render_schema, GOLDEN_SCHEMA_PATH: render_golden_schema}
