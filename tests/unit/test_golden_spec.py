"""golden.toml is validated like model.toml: strict, one `file: field: message` line per problem."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from modelfleet.catalog import load_catalog
from modelfleet.settings import FleetSettings
from modelfleet.spec.schema import GOLDEN_SCHEMA_PATH, render_golden_schema

REPO_ROOT = Path(__file__).resolve().parents[2]
GOLDEN_FILES = sorted((REPO_ROOT / "models").glob("*/golden.toml"))
GOOD = """
[[prompt]]
name = "capital"
messages = [{ role = "user", content = "What is the capital of France?" }]
checks = [{ kind = "contains", value = "Paris" }]
"""


def problems_of(fleet_repo: Path, golden: str, write_model: Callable[[str, str], Path]) -> list[str]:
    """Every problem line the catalog reports for a model folder with this golden.toml."""
    write_model("tiny")
    (fleet_repo / "models" / "tiny" / "golden.toml").write_text(golden)
    catalog = load_catalog(FleetSettings())
    return [p.render(fleet_repo) for p in catalog.problems if p.file.name == "golden.toml"]


def test_a_valid_golden_file_loads_onto_the_model(fleet_repo: Path, write_model: Callable[[str, str], Path]) -> None:
    assert problems_of(fleet_repo, GOOD, write_model) == []
    model = load_catalog(FleetSettings()).require("tiny")
    assert model.golden is not None and [p.name for p in model.golden.prompt] == ["capital"]
    assert [p.name for p in model.golden.fingerprint_prompts] == ["capital"]


def test_a_misspelt_check_field_is_one_line_with_a_suggestion(
    fleet_repo: Path, write_model: Callable[[str, str], Path]
) -> None:
    text = GOOD.replace('value = "Paris"', 'valeu = "Paris"')
    lines = problems_of(fleet_repo, text, write_model)
    assert "models/tiny/golden.toml: prompt.0.checks.0.valeu: unknown field 'valeu'; did you mean 'value'?" in lines
    assert "models/tiny/golden.toml: prompt.0.checks.0.value: required field is missing" in lines
    # The folder's model is not loaded while its golden.toml is broken.
    assert "tiny" not in load_catalog(FleetSettings()).models


def test_an_unknown_check_kind_lists_the_known_ones(fleet_repo: Path, write_model: Callable[[str, str], Path]) -> None:
    text = GOOD.replace('kind = "contains"', 'kind = "contain"')
    (line,) = problems_of(fleet_repo, text, write_model)
    assert line.startswith("models/tiny/golden.toml: prompt.0.checks.0: 'contain' is not a known kind; use one of ")
    assert "'json-schema'" in line and "'finish_reason'" in line


def test_a_bad_regex_and_a_bad_json_schema_say_why(fleet_repo: Path, write_model: Callable[[str, str], Path]) -> None:
    text = GOOD.replace(
        '{ kind = "contains", value = "Paris" }',
        '{ kind = "regex", pattern = "(Paris" }, { kind = "json-schema", json_schema = { type = 3 } }',
    )
    lines = problems_of(fleet_repo, text, write_model)
    assert any(
        line.startswith(
            "models/tiny/golden.toml: prompt.0.checks.0.pattern: '(Paris' is not a valid regular expression"
        )
        for line in lines
    ), lines
    assert any(
        line.startswith("models/tiny/golden.toml: prompt.0.checks.1.json_schema: not a valid JSON Schema")
        for line in lines
    ), lines


def test_duplicate_names_and_unknown_fingerprint_prompts_name_the_field(
    fleet_repo: Path, write_model: Callable[[str, str], Path]
) -> None:
    text = GOOD + GOOD + '\n[fingerprint]\nprompts = ["capitl"]\n'
    lines = problems_of(fleet_repo, text, write_model)
    assert "models/tiny/golden.toml: prompt.1.name: 'capital' is already the name of prompt.0" in lines
    assert "models/tiny/golden.toml: fingerprint.prompts: unknown prompt(s) 'capitl'; known: capital, capital" in lines


def test_the_last_message_must_be_the_users_and_an_eval_file_must_exist(
    fleet_repo: Path, write_model: Callable[[str, str], Path]
) -> None:
    text = GOOD.replace('role = "user"', 'role = "assistant"') + (
        '\n[eval]\ntask_file = "missing.jsonl"\nrule = { kind = "wilson", min_accuracy = 0.5 }\n'
    )
    lines = problems_of(fleet_repo, text, write_model)
    assert lines == ["models/tiny/golden.toml: prompt.0.messages: the last message must be the user's, got 'assistant'"]
    fixed = GOOD + '\n[eval]\ntask_file = "missing.jsonl"\nrule = { kind = "wilson", min_accuracy = 0.5 }\n'
    assert problems_of(fleet_repo, fixed, write_model) == [
        "models/tiny/golden.toml: eval.task_file: 'missing.jsonl' is not a file in tiny/"
    ]


def test_the_checked_in_golden_schema_is_current() -> None:
    assert (REPO_ROOT / GOLDEN_SCHEMA_PATH).read_text() == render_golden_schema(), "run `fleet schema` and commit it"


@pytest.mark.parametrize("golden", GOLDEN_FILES, ids=lambda p: p.parent.name)
def test_every_example_golden_file_validates_against_the_schema_and_points_at_it(golden: Path) -> None:
    text = golden.read_text()
    assert text.startswith("#:schema ../golden.schema.json\n")
    schema = json.loads((REPO_ROOT / GOLDEN_SCHEMA_PATH).read_text())
    jsonschema.validate(tomllib.loads(text), schema)


def test_every_example_model_has_a_golden_file() -> None:
    folders = {p.parent.name for p in (REPO_ROOT / "models").glob("*/model.toml")}
    assert {p.parent.name for p in GOLDEN_FILES} == folders
