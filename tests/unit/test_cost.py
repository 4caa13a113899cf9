"""The cost model: per-model floor and ceiling, the fleet's totals, and the GPU the price table lacks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.catalog import load_catalog
from modelfleet.cli.app import app
from modelfleet.plan import Plan, PlanEntry, fleet_cost
from modelfleet.settings import FleetSettings
from tests.unit.conftest import MINIMAL_MODEL

WriteModel = Callable[[str, str], Path]
runner = CliRunner()
UNPRICED = "gpu.type: fleet.toml's prices.per_hour has no price for H100"


def _drop_h100_price(fleet_repo: Path) -> None:
    toml = fleet_repo / "fleet.toml"
    text = toml.read_text()
    assert "\nH100 = " in text
    toml.write_text("\n".join(line for line in text.splitlines() if not line.startswith("H100 = ")) + "\n")


def test_fleet_cost_sums_every_model_floor_and_ceiling(write_model: WriteModel) -> None:
    write_model("alpha", MINIMAL_MODEL + "\n[scaling]\nmin_containers = 1\nmax_containers = 3\n")
    write_model("beta", MINIMAL_MODEL.replace('type = "H100"', 'type = "H200"'))
    report = fleet_cost(load_catalog(FleetSettings()), FleetSettings())
    assert [(line.model, line.gpus, line.cost.gpu_price) for line in report.lines] == [
        ("alpha", ("H100",), 3.95),
        ("beta", ("H200",), 4.54),
    ]
    assert report.floor == pytest.approx(3.95)
    assert report.floor_per_month == pytest.approx(3.95 * 730)
    assert report.ceiling == pytest.approx(3 * 3.95 + 4.54)


def test_plan_totals_are_the_sums_of_its_entries() -> None:
    plan = Plan(
        [
            PlanEntry("a", "fleet-a", "create", (), 0.0, 1.0, 0.0, 2.0),
            PlanEntry("b", "fleet-b", "update", (), 3.0, 4.0, 5.0, 6.0),
            PlanEntry("c", "fleet-c", "orphan", (), 7.0, 0.0, 8.0, 0.0),
        ]
    )
    assert (plan.floor_before, plan.floor_after, plan.ceiling_before, plan.ceiling_after) == (10.0, 5.0, 13.0, 8.0)
    assert plan.counts == {"create": 1, "update": 1, "unchanged": 0, "orphan": 1}


def test_a_gpu_without_a_price_is_a_warning_in_validate_plan_and_cost(
    write_model: WriteModel, fleet_repo: Path
) -> None:
    _drop_h100_price(fleet_repo)
    write_model("alpha", MINIMAL_MODEL)
    empty = fleet_repo / "empty.json"
    empty.write_text("{}\n")
    for command in (["validate"], ["plan", "--state", str(empty)], ["cost"]):
        result = runner.invoke(app, command, env={"COLUMNS": "200"})
        assert result.exit_code == 0, (command, result.output)
        assert f"warning: models/alpha/model.toml: {UNPRICED}" in result.output, command
    cost = runner.invoke(app, ["cost"], env={"COLUMNS": "200"})
    row = next(line for line in cost.stdout.splitlines() if "alpha" in line)
    assert "no price" in row


def test_a_priced_gpu_draws_no_price_warning(write_model: WriteModel) -> None:
    write_model("alpha", MINIMAL_MODEL)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert "has no price" not in result.output


def test_cost_exits_1_when_a_broken_folder_is_missing_from_the_totals(write_model: WriteModel) -> None:
    write_model("alpha", MINIMAL_MODEL)
    write_model("broken", "[[[")
    result = runner.invoke(app, ["cost"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "models/broken/model.toml: (syntax)" in result.output
    assert "hide broken folders" in result.output
