"""fleet.toml environments: the chosen one's values apply, contradictions are one line each; the plan's state source."""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli.app import app
from modelfleet.plan import StateSource
from modelfleet.runtime.ports import first_free_port
from modelfleet.settings import LOCAL_PORT_SPAN, FleetSettings, FleetTomlError

ENVIRONMENTS = """
[environments.staging]
modal_environment = "fleet-staging"
state_dir = ".fleet/staging"
local_base_port = 8800

[environments.prod]
modal_environment = "fleet-prod"
state_dir = ".fleet/prod"
local_base_port = 9000
promote_from = "staging"
"""


def _fleet(tmp_path: Path, text: str) -> Path:
    (tmp_path / "fleet.toml").write_text(text)
    return tmp_path


def test_the_chosen_environment_gives_its_modal_environment_state_folder_and_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _fleet(tmp_path, 'env = "staging"\n' + ENVIRONMENTS)
    monkeypatch.delenv("FLEET_ENV", raising=False)
    staging = FleetSettings(root=root)
    monkeypatch.setenv("FLEET_ENV", "prod")
    prod = FleetSettings(root=root)

    assert (staging.modal_environment, staging.state_path, staging.local_base_port) == (
        "fleet-staging",
        root / ".fleet/staging",
        8800,
    )
    assert (prod.modal_environment, prod.state_path, prod.local_base_port) == ("fleet-prod", root / ".fleet/prod", 9000)
    assert staging.for_environment("prod").modal_environment == "fleet-prod"


def test_an_unknown_environment_and_overlapping_ports_are_one_line_each(tmp_path: Path) -> None:
    text = 'env = "qa"\n' + ENVIRONMENTS.replace("local_base_port = 9000", "local_base_port = 8900")
    with pytest.raises(FleetTomlError) as raised:
        FleetSettings(root=_fleet(tmp_path, text))
    lines = str(raised.value).splitlines()
    assert lines[0] == (
        "fleet.toml: env: 'qa' is not an environment; declared: prod, staging "
        "(add [environments.qa] to fleet.toml, or pick one with --env / FLEET_ENV)"
    )
    assert lines[1].startswith(
        "fleet.toml: environments.prod.local_base_port: 8900 is inside staging's ports 8800..8999"
    )


def test_the_port_span_is_the_one_the_local_target_searches() -> None:
    assert inspect.signature(first_free_port).parameters["span"].default == LOCAL_PORT_SPAN


def test_every_command_takes_env() -> None:
    for args in (["plan", "--help"], ["promote", "--help"], ["state", "export", "--help"], ["smoke", "--help"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0 and "--env" in result.output, args


def test_a_state_file_source_says_its_age_and_an_unstamped_one_says_unknown() -> None:
    now = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    stamped = StateSource("file", "state.json of prod", "2026-12-01T02:48:00+00:00")
    assert stamped.describe(now) == "state file state.json of prod (exported 2026-12-01T02:48:00+00:00, 1d 3h old)"
    assert (
        StateSource("file", "old.json").describe(now) == "state file old.json (export time not recorded, age unknown)"
    )


def test_the_plan_names_its_environment_and_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.unit.conftest import REPO_ROOT

    state = tmp_path / "state.json"
    state.write_text(json.dumps({"models": {}, "environment": "prod", "exported_at": "2026-12-01T00:00:00+00:00"}))
    monkeypatch.setenv("FLEET_ROOT", str(REPO_ROOT))
    result = CliRunner().invoke(app, ["plan", "--state", str(state), "--format", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["state"]["kind"] == "file" and payload["state"]["read_at"] == "2026-12-01T00:00:00+00:00"
    assert payload["state"]["describe"].startswith(f"state file {state} of prod (exported 2026-12-01T00:00:00+00:00, ")
    markdown = CliRunner().invoke(app, ["plan", "--no-state", "--format", "markdown"])
    assert "Against the no deployed state (--no-state): every model shows as create." in markdown.stdout
