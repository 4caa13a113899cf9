"""The fleet's Prometheus series: labels, TTL of a dead replica, round trip through the parser, admin-only route."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.testclient import TestClient

from modelfleet.gateway.auth import Authenticator
from modelfleet.gateway.key_stores import LocalKeyStore
from modelfleet.gateway.keys import KeyLimits, new_key
from modelfleet.observe.exposition import FleetCollector, ReplicaStore, fleet_registry, json_text, prometheus_text
from modelfleet.observe.gateway_route import metrics_route
from modelfleet.observe.local_source import ReplicaScrape
from modelfleet.observe.samples import EngineSample, parse_metrics

CAPTURED = Path(__file__).parent / "data" / "vllm_metrics.txt"


class Rounds:
    """What each scrape returns, and a clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.replicas: list[ReplicaScrape] = []

    def scrape(self) -> list[ReplicaScrape]:
        return [ReplicaScrape(r.model, r.replica, r.state, r.sample, self.now) for r in self.replicas]


@pytest.fixture
def sample() -> EngineSample:
    return parse_metrics(CAPTURED.read_text())


def _collector(rounds: Rounds, ttl: float = 30.0) -> FleetCollector:
    return FleetCollector(rounds.scrape, "local", "staging", {}, {}, ReplicaStore(ttl=ttl), clock=lambda: rounds.now)


def _series(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_replica_series_carry_model_target_environment_and_replica(sample: EngineSample) -> None:
    rounds = Rounds()
    rounds.replicas = [
        ReplicaScrape("demo", "r1", "running", sample, 0),
        ReplicaScrape("demo", "r2", "running", sample, 0),
    ]
    series = _series(prometheus_text(fleet_registry(_collector(rounds))))
    labels = (("environment", "staging"), ("model", "demo"), ("replica", "r1"), ("target", "local"))
    assert series[("fleet_generation_tokens_total", labels)] == 559.0
    assert series[("fleet_time_to_first_token_seconds_count", labels)] == 54.0
    assert series[("fleet_time_to_first_token_seconds_bucket", (labels[0], ("le", "0.1"), *labels[1:]))] == 31.0
    replicas = (("environment", "staging"), ("model", "demo"), ("state", "running"), ("target", "local"))
    assert series[("fleet_replicas", replicas)] == 2.0


def test_a_dead_replica_keeps_its_series_until_its_ttl_and_not_after(sample: EngineSample) -> None:
    rounds = Rounds()
    registry = fleet_registry(_collector(rounds, ttl=30.0))
    rounds.replicas = [ReplicaScrape("demo", "r1", "running", sample, 0)]
    assert 'replica="r1"' in prometheus_text(registry)
    rounds.replicas = []  # the engine died: it no longer answers
    rounds.now += 29.0
    assert 'replica="r1"' in prometheus_text(registry)  # a missed scrape does not blank a live replica
    rounds.now += 2.0
    assert 'replica="r1"' not in prometheus_text(registry)


def test_a_starting_replica_is_counted_without_engine_series() -> None:
    rounds = Rounds()
    rounds.replicas = [ReplicaScrape("demo", "r1", "starting", None, 0)]
    series = _series(prometheus_text(fleet_registry(_collector(rounds))))
    starting = (("environment", "staging"), ("model", "demo"), ("state", "starting"), ("target", "local"))
    assert series[("fleet_replicas", starting)] == 1.0
    assert not any(name == "fleet_generation_tokens_total" for name, _ in series)


def test_json_format_lists_the_same_samples(sample: EngineSample) -> None:
    rounds = Rounds()
    rounds.replicas = [ReplicaScrape("demo", "r1", "running", sample, 0)]
    text = json_text(fleet_registry(_collector(rounds)))
    assert '"fleet_prompt_tokens_total"' in text and '"replica": "r1"' in text


def _auth_with_keys(folder: Path) -> tuple[Authenticator, str, str]:
    """An Authenticator over a key store holding one admin and one client key; their texts."""
    store = LocalKeyStore(folder / "keys.json")
    admin_record, admin_key = new_key("prometheus", KeyLimits(), "admin")
    client_record, client_key = new_key("app", KeyLimits())
    store.add(admin_record)
    store.add(client_record)
    return Authenticator(store, ttl=2), admin_key, client_key


def test_gateway_route_answers_the_admin_key_only(sample: EngineSample, tmp_path: Path) -> None:
    rounds = Rounds()
    rounds.replicas = [ReplicaScrape("demo", "r1", "running", sample, 0)]
    auth, admin_key, client_key = _auth_with_keys(tmp_path)
    client = TestClient(Starlette(routes=[metrics_route(fleet_registry(_collector(rounds)), auth)]))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer a-made-up-key"}).status_code == 401
    wrong_scope = client.get("/metrics", headers={"Authorization": f"Bearer {client_key}"})
    assert wrong_scope.status_code == 403 and wrong_scope.json()["error"]["type"] == "wrong_key_scope"
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {admin_key}"})
    assert answer.status_code == 200
    assert (
        'fleet_generation_tokens_total{environment="staging",model="demo",replica="r1",target="local"} 559.0'
        in answer.text
    )


def test_a_local_gateway_serves_its_engines_read_directly_to_the_admin(fleet_repo: Path, tmp_path: Path) -> None:
    from modelfleet.gateway.server import metrics_for
    from modelfleet.settings import FleetSettings

    metrics = metrics_for(FleetSettings())
    assert metrics.target == "local" and metrics.replicas is not None  # this machine's engines, not reports
    auth, admin_key, _ = _auth_with_keys(tmp_path)
    client = TestClient(Starlette(routes=[metrics.route(auth)]))
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {admin_key}"})
    assert answer.status_code == 200 and "# TYPE fleet_replicas gauge" in answer.text


def test_a_gateway_of_another_target_reads_the_replicas_reports(
    fleet_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelfleet.gateway.server import metrics_for
    from modelfleet.settings import FleetSettings

    monkeypatch.setenv("FLEET_TARGET", "modal")
    metrics = metrics_for(FleetSettings())
    assert metrics.target == "modal" and metrics.replicas is None
