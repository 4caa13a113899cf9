"""``fleet new`` writes a golden.toml beside model.toml, and the folder validates with it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from modelfleet.catalog import load_catalog
from modelfleet.settings import FleetSettings
from tests.unit.test_new_from_dir import _checkout, no_hub

__all__ = ["no_hub"]


def test_fleet_new_scaffolds_a_golden_file_that_loads_onto_the_model(
    fleet_repo: Path, tmp_path: Path, no_hub: None
) -> None:
    from modelfleet.cli.app import app

    checkout = _checkout(tmp_path / "checkout")
    result = CliRunner().invoke(app, ["new", "tiny", "--from-dir", str(checkout)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    golden = fleet_repo / "models" / "tiny" / "golden.toml"
    assert golden.read_text().startswith("#:schema ../golden.schema.json\n# What tiny must answer")
    model = load_catalog(FleetSettings()).require("tiny")
    assert model.golden is not None
    assert [p.name for p in model.golden.prompt] == ["capital-france", "arithmetic", "system-prompt"]
