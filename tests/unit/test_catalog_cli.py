"""The catalog commands as a user runs them: output, exit codes, and files written."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from modelfleet.catalog import UnknownModelError, load_catalog
from modelfleet.cli.app import app
from modelfleet.cli.common import user_errors
from modelfleet.errors import FleetError
from modelfleet.settings import FleetSettings
from modelfleet.spec.schema import SCHEMA_PATH, render_schema
from tests.unit.conftest import MINIMAL_MODEL, REPO_ROOT

WriteModel = Callable[[str, str], Path]
runner = CliRunner()
SHA = "0123456789abcdef0123456789abcdef01234567"


def test_validate_reports_every_broken_folder_and_exits_1(write_model: WriteModel) -> None:
    write_model("good", MINIMAL_MODEL)
    write_model("bad-gpu", MINIMAL_MODEL.replace('type = "H100"', 'type = "H1OO"'))
    write_model("bad-toml", "[[[")
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 1
    assert "models/bad-gpu/model.toml: gpu.type: 'H1OO' is not one of" in result.output
    assert "models/bad-toml/model.toml: (syntax): not valid TOML" in result.output
    assert "1 model(s) valid, 2 file(s) with errors" in result.output
    assert "Traceback" not in result.output


def test_validate_passes_on_the_repo_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    # Through monkeypatch, so the real fleet's settings last for this test only (a bare
    # os.environ.pop changed FLEET_ROOT for every test that ran after this one).
    monkeypatch.setenv("FLEET_ROOT", str(REPO_ROOT))
    for name in ("FLEET_TARGET", "FLEET_APP_PREFIX", "FLEET_DEPLOY_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output


def test_list_shows_a_row_per_model(write_model: WriteModel) -> None:
    write_model("alpha", MINIMAL_MODEL)
    result = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "alpha" in result.output and "org/tiny@0123456" in result.output and "H100" in result.output


def test_show_prints_the_effective_config_with_defaults(write_model: WriteModel) -> None:
    write_model("alpha", MINIMAL_MODEL)
    as_toml = runner.invoke(app, ["show", "alpha"])
    assert as_toml.exit_code == 0, as_toml.output
    data = tomllib.loads(as_toml.output)
    assert data["image"]["vllm_version"] == "0.25.0"
    as_json = runner.invoke(app, ["show", "alpha", "--format", "json"])
    assert json.loads(as_json.output) == data


def test_show_of_an_unknown_model_lists_the_known_ones(write_model: WriteModel) -> None:
    write_model("alpha", MINIMAL_MODEL)
    result = runner.invoke(app, ["show", "nope"])
    assert result.exit_code == 1
    assert "error: no valid model named 'nope' (known: alpha)" in result.output


def test_show_of_a_broken_model_says_why(write_model: WriteModel) -> None:
    write_model("alpha", MINIMAL_MODEL.replace("max_model_len = 8192", "max_model_len = 1"))
    result = runner.invoke(app, ["show", "alpha"])
    assert result.exit_code == 1
    assert "model 'alpha' does not validate: models/alpha/model.toml: vllm.max_model_len" in result.output


def test_a_command_looking_up_a_broken_model_quotes_its_problem(write_model: WriteModel) -> None:
    write_model("alpha", MINIMAL_MODEL.replace("max_model_len = 8192", "max_model_len = 1"))
    result = runner.invoke(app, ["logs", "alpha"])
    assert result.exit_code == 1
    assert "model 'alpha' does not validate: models/alpha/model.toml: vllm.max_model_len" in result.output
    assert "Traceback" not in result.output


def test_an_unknown_model_is_a_fleet_error_and_a_key_error(write_model: WriteModel) -> None:
    write_model("alpha", MINIMAL_MODEL)
    catalog = load_catalog(FleetSettings())
    with pytest.raises(UnknownModelError) as raised:
        catalog.require("nope")
    assert isinstance(raised.value, FleetError) and isinstance(raised.value, KeyError)
    assert str(raised.value) == "no valid model named 'nope' (known: alpha)"


def test_a_programming_error_inside_a_command_keeps_its_traceback() -> None:
    with pytest.raises(ZeroDivisionError), user_errors():
        _ = 1 / 0
    with pytest.raises(KeyError), user_errors():
        raise KeyError("a bug, not an unknown model")


def test_a_fleet_error_inside_a_command_is_one_line_and_exit_1() -> None:
    with pytest.raises(typer.Exit) as raised, user_errors():
        raise FleetError("models/x/model.toml: gpu.type: unknown")
    assert raised.value.exit_code == 1


def test_a_spec_validation_error_inside_a_command_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from pydantic import BaseModel

    class Scaling(BaseModel):
        max_containers: int

    with pytest.raises(typer.Exit) as raised, user_errors():
        Scaling.model_validate({"max_containers": "many"})
    assert raised.value.exit_code == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: Scaling: max_containers: Input should be a valid integer") and "\n" not in line


def test_a_format_outside_the_choices_exits_2_with_the_choices(write_model: WriteModel) -> None:
    write_model("alpha", MINIMAL_MODEL)
    for command in (["plan", "--state", "/dev/null"], ["show", "alpha"]):
        result = runner.invoke(app, [*command, "--format", "jsn"])
        assert result.exit_code == 2, (command, result.output)
        assert "'jsn' is not one of" in result.output and "'json'" in result.output


def test_checked_in_schema_matches_the_models() -> None:
    assert (REPO_ROOT / SCHEMA_PATH).read_text() == render_schema(), "run `fleet schema` and commit the result"


def test_schema_check_fails_on_drift(fleet_repo: Path) -> None:
    (fleet_repo / SCHEMA_PATH).write_text("{}\n")
    result = runner.invoke(app, ["schema", "--check"])
    assert result.exit_code == 1
    assert "models/model.schema.json is out of date: run `fleet schema`" in result.output
    assert runner.invoke(app, ["schema"]).exit_code == 0
    assert runner.invoke(app, ["schema", "--check"]).exit_code == 0


def test_schema_describes_every_field() -> None:
    schema = json.loads(render_schema())
    missing = [
        f"{name}.{field}"
        for name, definition in schema["$defs"].items()
        for field, prop in definition.get("properties", {}).items()
        if "description" not in prop
    ]
    assert missing == []


def test_cost_reports_floor_and_ceiling(write_model: WriteModel) -> None:
    write_model("alpha", MINIMAL_MODEL + "\n[scaling]\nmin_containers = 1\nmax_containers = 3\n")
    result = runner.invoke(app, ["cost"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "alpha" in line)
    # H100 at $3.95/h: floor 1 container, ceiling 3.
    assert "3.95" in row and "2,884" in row and "11.85" in row


def test_settings_come_from_fleet_toml_and_env(fleet_repo: Path) -> None:
    result = runner.invoke(app, ["list"], env={"FLEET_TARGET": "modal", "COLUMNS": "200"})
    assert "target: modal" in result.output
    bad = runner.invoke(app, ["list"], env={"FLEET_TARGET": "moon"})
    assert bad.exit_code == 1
    assert "fleet.toml / FLEET_* settings: target:" in bad.output


def test_every_example_model_has_a_readme_and_literate_comments() -> None:
    folders = sorted(p for p in (REPO_ROOT / "models").iterdir() if p.is_dir())
    assert {p.name for p in folders} >= {
        "smollm2-135m",
        "llama31-8b-instruct",
        "llama33-70b-instruct",
        "qwen25-vl-7b-instruct",
    }
    for folder in folders:
        assert (folder / "README.md").is_file(), folder
        comments = [line for line in (folder / "model.toml").read_text().splitlines() if line.startswith("#")]
        assert len(comments) >= 10, f"{folder.name}: explain the choices in model.toml comments"
