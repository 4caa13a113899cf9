"""``fleet gateway serve``: bad upstream arguments are one error line, before anything listens."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from modelfleet.cli.app import app
from modelfleet.gateway.ledger import Ledger
from modelfleet.gateway.server import fleet_gateway
from modelfleet.gateway.upstream import Upstream
from modelfleet.settings import FleetSettings
from tests.support.gateway_fixtures import RecordingUpstream, bearer, serving, serving_gateway

runner = CliRunner()


def test_serve_refuses_an_upstream_without_name_or_url(fleet_repo: Path) -> None:
    for bad in ("http://127.0.0.1:8800", "demo=127.0.0.1:8800", "=http://x"):
        result = runner.invoke(app, ["gateway", "serve", "--upstream", bad])
        assert result.exit_code == 1, bad
        assert f"--upstream {bad!r}: expected SERVED_NAME=http://host:port" in result.output


def test_a_bad_gateway_table_is_one_line_naming_the_field(fleet_repo: Path) -> None:
    toml = fleet_repo / "fleet.toml"
    toml.write_text(toml.read_text() + "\n[gateway]\nport = 80\n")
    result = runner.invoke(app, ["keys", "list"])
    assert result.exit_code == 1
    assert "gateway.port: Input should be greater than or equal to 1024" in result.output


def test_fleet_gateway_uses_the_fleets_key_store_ledger_and_prices(fleet_repo: Path) -> None:
    made = runner.invoke(app, ["keys", "create", "alice", "--format", "json"])
    key = json.loads(made.output)["key"]
    upstream = RecordingUpstream()
    with serving(upstream.app()) as upstream_url:
        gateway = fleet_gateway(FleetSettings(), {"served-a": Upstream(upstream_url, {}, "H100", 2)})
        with serving_gateway(gateway) as url:
            body = {"model": "served-a", "prompt": "x", "max_tokens": 2}
            response = httpx.post(f"{url}/v1/completions", json=body, headers=bearer(key), timeout=30)
            assert response.status_code == 200, response.text
    (row,) = Ledger(fleet_repo / ".fleet" / "gateway-usage.sqlite").rows()
    # fleet.toml prices an H100 at $3.95/h per GPU; gpu_seconds already counts both GPUs.
    assert row.key == "alice" and row.counts.cost_usd == pytest.approx(row.counts.gpu_seconds * 3.95 / 3600)
