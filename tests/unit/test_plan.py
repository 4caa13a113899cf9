"""``fleet plan`` against a saved state: create / update with field diffs / unchanged / orphan, and cost."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from modelfleet.catalog import load_catalog
from modelfleet.cli.app import app
from modelfleet.settings import FleetSettings
from modelfleet.state import DeployRecord, FleetState, save_state_file
from tests.unit.conftest import MINIMAL_MODEL

WriteModel = Callable[[str, str], Path]
runner = CliRunner()


def _deployed_now(fleet_repo: Path) -> Path:
    """Record every current model as deployed, like a deploy would, and return the export."""
    settings = FleetSettings()
    catalog = load_catalog(settings)
    state = FleetState(
        models={
            name: DeployRecord(
                app=settings.app_name(name),
                spec_hash=m.spec_hash(),
                spec=m.spec.model_dump(mode="json"),
                tag="abc123",
                version="v3",
            )
            for name, m in catalog.models.items()
        }
    )
    path = fleet_repo / "state.json"
    save_state_file(state, path)
    return path


def test_plan_shows_create_update_unchanged_and_orphan(write_model: WriteModel, fleet_repo: Path) -> None:
    write_model("stays", MINIMAL_MODEL)
    write_model("changes", MINIMAL_MODEL)
    write_model("goes", MINIMAL_MODEL)
    state = _deployed_now(fleet_repo)
    write_model(
        "changes",
        MINIMAL_MODEL.replace("max_model_len = 8192", "max_model_len = 4096") + "\n[scaling]\nmin_containers = 1\n",
    )
    (fleet_repo / "models/goes/model.toml").unlink()
    (fleet_repo / "models/goes").rmdir()
    write_model("arrives", MINIMAL_MODEL)

    result = runner.invoke(app, ["plan", "--state", str(state), "--format", "json"])
    assert result.exit_code == 0, result.output
    entries = {e["model"]: e for e in json.loads(result.output[result.output.index("{") :])["entries"]}
    assert {name: e["action"] for name, e in entries.items()} == {
        "arrives": "create",
        "changes": "update",
        "stays": "unchanged",
        "goes": "orphan",
    }
    changed = {c["path"]: (c["old"], c["new"]) for c in entries["changes"]["changes"]}
    assert changed == {"vllm.max_model_len": (8192, 4096), "scaling.min_containers": (0, 1)}
    assert entries["changes"]["floor_before"] == 0.0 and entries["changes"]["floor_after"] == 3.95
    assert entries["goes"]["ceiling_before"] == 3.95 and entries["goes"]["ceiling_after"] == 0.0


def test_plan_table_reads_like_terraform(write_model: WriteModel, fleet_repo: Path) -> None:
    write_model("alpha", MINIMAL_MODEL)
    state = _deployed_now(fleet_repo)
    write_model("alpha", MINIMAL_MODEL.replace('type = "H100"', 'type = "H200"'))
    result = runner.invoke(app, ["plan", "--state", str(state)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "~ update" in result.output
    assert "gpu.type: H100 -> H200" in result.output
    assert "Plan: 0 to create, 1 to update, 0 orphaned, 0 unchanged." in result.output
    assert "ceiling $3.95/h -> $4.54/h" in result.output


def test_plan_markdown_is_a_table_for_the_job_summary(write_model: WriteModel, fleet_repo: Path) -> None:
    write_model("alpha", MINIMAL_MODEL)
    empty = fleet_repo / "empty.json"
    empty.write_text("{}\n")
    result = runner.invoke(app, ["plan", "--state", str(empty), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert "| alpha | + create | new app fleet-alpha | 0.00 | 0.00 -> 3.95 |" in result.output


def test_a_missing_or_broken_state_file_is_a_clear_error(write_model: WriteModel, fleet_repo: Path) -> None:
    write_model("alpha", MINIMAL_MODEL)
    missing = runner.invoke(app, ["plan", "--state", str(fleet_repo / "nope.json")])
    assert missing.exit_code == 1
    assert "nope.json: no such state file" in missing.output
    (fleet_repo / "bad.json").write_text('{"models": {"x": {"app": 1}}}')
    bad = runner.invoke(app, ["plan", "--state", str(fleet_repo / "bad.json")])
    assert bad.exit_code == 1
    assert "bad.json: not a fleet state file" in bad.output


def test_a_broken_folder_is_not_planned_as_an_orphan(write_model: WriteModel, fleet_repo: Path) -> None:
    write_model("alpha", MINIMAL_MODEL)
    state = _deployed_now(fleet_repo)
    write_model("alpha", "[[[")
    result = runner.invoke(app, ["plan", "--state", str(state), "--format", "json"])
    assert result.exit_code == 1
    assert "orphan" not in result.output
    assert "models/alpha/model.toml: (syntax)" in result.output
