"""``fleet top`` and ``fleet metrics``: closed format sets, and the [compare] table in the output."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from modelfleet.cli.app import app

runner = CliRunner()


def test_top_json_names_the_compared_api_and_lists_no_model_when_nothing_runs(fleet_repo: Path) -> None:
    done = runner.invoke(app, ["top", "--format", "json", "--interval", "0.2"])
    assert done.exit_code == 0, done.output
    document = json.loads(done.output)
    assert document["models"] == []
    assert document["compare"]["output_per_million"] > 0  # the repo's fleet.toml has a [compare] table


def test_top_and_metrics_refuse_a_format_outside_their_set(fleet_repo: Path) -> None:
    assert runner.invoke(app, ["top", "--format", "yaml"]).exit_code == 2
    assert runner.invoke(app, ["metrics", "--format", "table"]).exit_code == 2


def test_a_compare_table_with_a_bad_date_is_one_fleet_toml_line(fleet_repo: Path) -> None:
    toml = fleet_repo / "fleet.toml"
    toml.write_text(
        toml.read_text().replace(
            'date = "2026-11-01"\nsource = "https://openai.com', 'date = "Nov"\nsource = "https://openai.com'
        )
    )
    done = runner.invoke(app, ["top", "--once"])
    assert done.exit_code == 1
    assert "compare.date" in done.output
