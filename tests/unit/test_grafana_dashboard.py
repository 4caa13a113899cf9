"""The Grafana dashboard reads only series the fleet's collector exposes (a renamed series would blank a panel)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from modelfleet.catalog import load_catalog
from modelfleet.gateway.fleet_metrics import GatewayMetrics
from modelfleet.gateway.ledger import Counts, UsageRow
from modelfleet.observe.exposition import FleetCollector, ReplicaStore, fleet_registry, prometheus_text
from modelfleet.observe.local_source import ReplicaScrape
from modelfleet.observe.samples import parse_metrics
from modelfleet.settings import FleetSettings
from tests.unit.conftest import MINIMAL_MODEL

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "ops" / "grafana" / "fleet.json"


def _exposed_sample_names(write_model: Callable[[str, str], Path]) -> set[str]:
    sample = parse_metrics((Path(__file__).parent / "data" / "vllm_metrics.txt").read_text())
    replicas = [ReplicaScrape("demo", "r1", "running", sample, 0.0), ReplicaScrape("demo", "r2", "starting", None, 0.0)]
    write_model("demo", MINIMAL_MODEL)
    specs = {"demo": load_catalog(FleetSettings()).require("demo").spec}
    collector = FleetCollector(
        lambda: replicas, "local", "test", specs, {"H100": 3.95}, ReplicaStore(), clock=lambda: 0.0
    )
    text = prometheus_text(fleet_registry(collector))
    # The gateway's /metrics adds its own counters (gateway/fleet_metrics.py).
    gateway = GatewayMetrics(target="modal", environment="test")
    gateway.tee(_NoLedger()).count(date(2026, 12, 2), "app", "demo", Counts(requests=1, prompt_tokens=3))
    text += prometheus_text(gateway.registry())
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


class _NoLedger:
    """A ledger that keeps nothing: the counters are all this test reads."""

    def count(self, day: date, key: str, model: str, counts: Counts) -> None:
        pass

    def flush(self, today: date) -> None:
        pass

    def tokens_on(self, day: date, key: str) -> int:
        return 0

    def cost_in_month(self, day: date, key: str) -> float:
        return 0.0

    def rows(self, *, since: date | None = None, key: str | None = None) -> list[UsageRow]:
        return []


def test_every_series_a_panel_queries_is_one_the_collector_exposes(write_model: Callable[[str, str], Path]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bfleet_[a-z_]+", target["expr"])
    }
    assert queried, "the dashboard queries no fleet series"
    exposed = _exposed_sample_names(write_model)
    assert queried <= exposed, sorted(queried - exposed)


def test_every_panel_filters_by_the_environment_and_model_variables() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert 'environment=~"$environment"' in target["expr"] and 'model=~"$model"' in target["expr"], panel[
                "title"
            ]
