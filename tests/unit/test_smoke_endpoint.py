"""Smoke checks catch a broken endpoint, told apart by what it gets wrong.

The endpoint is a small real HTTP server on 127.0.0.1 that speaks the edge's protocol
(proxy-auth headers, OpenAI JSON and SSE, /health JSON with the boot kind) and can be
told to misbehave the way a bad deploy would. The snapshot-loop tests reuse it: it
also plays a model that boots cold or restores after each forced cold start.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelfleet.postdeploy.smoke import Check, run_smoke
from modelfleet.runtime.tokens import Credentials

KEY, SECRET = "wk-test", "ws-test-secret"
SERVED = "tiny"
ANSWER = ["Paris", " is", " the", " capital", "."]


@dataclass
class Behaviour:
    """How the endpoint acts; tests flip these to play a broken deploy."""

    auth: bool = True
    expose_dev_routes: bool = False
    served_names: list[str] = field(default_factory=lambda: [SERVED])
    stream_chunks: list[str] = field(default_factory=lambda: list(ANSWER))
    stream_finishes: bool = True
    # Boot kinds, one per cold start; the endpoint answers 503 for ``boot_delay`` seconds after each.
    boots: list[str] = field(default_factory=lambda: ["cold"])
    boot_seconds: list[float] = field(default_factory=list)
    boot_delay: float = 0.0
    report_boot: bool = True


class FakeEndpoint:
    """A threaded HTTP server playing one model's edge; ``cold_start()`` plays a scale-to-zero."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.cold_starts = 0
        self.ready_at = 0.0
        self.requests: list[tuple[str, str]] = []
        # Per request, which credential headers came (names only: never a secret in a test log).
        self.credential_headers: list[frozenset[str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, as a target's ``endpoint()`` gives it."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def cold_start(self) -> None:
        """The next boot in the script begins; until ``boot_delay`` has passed requests get 503."""
        self.cold_starts += 1
        self.ready_at = time.monotonic() + self.behaviour.boot_delay

    @property
    def boot(self) -> str:
        """The kind of the current boot (the last one scripted repeats)."""
        boots = self.behaviour.boots
        return boots[min(max(self.cold_starts - 1, 0), len(boots) - 1)]

    @property
    def current_boot_seconds(self) -> float:
        """Boot seconds reported for the current boot (scripted, or 10 per try)."""
        scripted = self.behaviour.boot_seconds
        index = max(self.cold_starts - 1, 0)
        return scripted[index] if index < len(scripted) else 10.0 + index

    def __enter__(self) -> FakeEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(endpoint: FakeEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def _route(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            endpoint.requests.append((method, self.path))
            sent = {"modal-key", "modal-secret", "authorization"} & {k.lower() for k in self.headers}
            endpoint.credential_headers.append(frozenset(sent))
            b = endpoint.behaviour
            if b.auth and _presented(self.headers) != (KEY, SECRET):
                return self._json(401, {"error": {"message": "missing or invalid credentials"}})
            booting = time.monotonic() < endpoint.ready_at
            if self.path == "/health":
                info = {"boot": endpoint.boot, "boot_seconds": endpoint.current_boot_seconds} if b.report_boot else {}
                return self._json(503 if booting else 200, {"status": "ok", **info})
            if method == "POST" and self.path in ("/collective_rpc",) and b.expose_dev_routes:
                return self._json(200, {"result": []})
            if method == "GET" and self.path == "/server_info" and b.expose_dev_routes:
                return self._json(200, {"vllm": "dev"})
            if booting and self.path.startswith("/v1/"):
                return self._json(503, {"error": {"message": "waking up"}})
            if method == "GET" and self.path == "/v1/models":
                return self._json(200, {"object": "list", "data": [_model(n) for n in b.served_names]})
            if method == "POST" and self.path == "/v1/chat/completions":
                return self._stream(b) if body.get("stream") else self._json(200, _completion(b))
            return self._json(404, {"error": {"message": "not found"}})

        def _json(self, status: int, payload: object) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, b: Behaviour) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            for i, piece in enumerate(b.stream_chunks):
                last = i == len(b.stream_chunks) - 1
                finish = "stop" if last and b.stream_finishes else None
                self._event(_chunk({"content": piece}, finish))
            if b.stream_finishes:
                self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

        def _event(self, payload: object) -> None:
            self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()

    return Handler


def _presented(headers: Message) -> tuple[str | None, str | None]:
    """The token a request carries, in either of Modal's forms: the pair, or ``Bearer key.secret``."""
    if headers.get("Modal-Key"):
        return headers.get("Modal-Key"), headers.get("Modal-Secret")
    scheme, _, value = (headers.get("Authorization") or "").partition(" ")
    key, _, secret = value.partition(".")
    return (key, secret) if scheme == "Bearer" else (None, None)


def _model(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "test"}


def _chunk(delta: dict[str, str], finish: str | None) -> dict[str, object]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": SERVED,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _completion(b: Behaviour) -> dict[str, object]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": SERVED,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(b.stream_chunks)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
    }


@pytest.fixture
def endpoint() -> Iterator[FakeEndpoint]:
    with FakeEndpoint() as running:
        yield running


def _failed(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.detail for c in checks if not c.ok}


def test_a_healthy_endpoint_passes_every_check(endpoint: FakeEndpoint) -> None:
    report = run_smoke(endpoint.url, Credentials(KEY, SECRET), SERVED, timeout=10)
    assert report.ok, _failed(report.checks)
    assert [c.name for c in report.checks] == [
        "health",
        "models lists the served name",
        "chat completion answers",
        "streaming works",
        "no credentials -> 401",
        "wrong secret -> 401",
        "POST /collective_rpc -> 404",
        "GET /server_info -> 404",
    ]
    assert "boot=cold" in report.checks[0].detail


def test_an_exposed_dev_route_fails_with_expected_and_actual_status(endpoint: FakeEndpoint) -> None:
    endpoint.behaviour.expose_dev_routes = True
    report = run_smoke(endpoint.url, Credentials(KEY, SECRET), SERVED, timeout=10)
    failed = _failed(report.checks)
    assert set(failed) == {"POST /collective_rpc -> 404", "GET /server_info -> 404"}
    assert failed["POST /collective_rpc -> 404"].startswith("expected 404 for POST /collective_rpc, got 200")
    assert not report.ok


def test_an_endpoint_without_auth_fails_both_401_checks(endpoint: FakeEndpoint) -> None:
    endpoint.behaviour.auth = False
    report = run_smoke(endpoint.url, Credentials(KEY, SECRET), SERVED, timeout=10)
    failed = _failed(report.checks)
    assert set(failed) == {"no credentials -> 401", "wrong secret -> 401"}
    assert "got 200" in failed["wrong secret -> 401"]


def test_a_public_model_skips_the_401_checks(endpoint: FakeEndpoint) -> None:
    endpoint.behaviour.auth = False
    report = run_smoke(endpoint.url, Credentials(KEY, SECRET), SERVED, auth_required=False, timeout=10)
    assert report.ok
    assert not any("401" in c.name for c in report.checks)


def test_a_wrong_token_names_the_key_and_never_the_secret(endpoint: FakeEndpoint) -> None:
    wrong = Credentials(KEY, "ws-this-is-not-it")
    report = run_smoke(endpoint.url, wrong, SERVED, timeout=3)
    failed = _failed(report.checks)
    assert "models lists the served name" in failed and "streaming works" in failed
    assert "rejected key wk-test" in failed["chat completion answers"]
    assert all("ws-this-is-not-it" not in detail for detail in failed.values())
    assert not report.ok


def test_a_missing_served_name_shows_what_was_listed(endpoint: FakeEndpoint) -> None:
    endpoint.behaviour.served_names = ["other-model"]
    report = run_smoke(endpoint.url, Credentials(KEY, SECRET), SERVED, timeout=10)
    assert _failed(report.checks)["models lists the served name"] == (
        "expected 'tiny' in /v1/models, got ['other-model']"
    )


def test_a_stream_of_one_chunk_or_without_an_end_fails(endpoint: FakeEndpoint) -> None:
    endpoint.behaviour.stream_chunks = ["Paris"]
    short = _failed(run_smoke(endpoint.url, Credentials(KEY, SECRET), SERVED, timeout=10).checks)
    assert short["streaming works"] == "expected several content chunks, got 1: 'Paris'"
    endpoint.behaviour.stream_chunks = list(ANSWER)
    endpoint.behaviour.stream_finishes = False
    unfinished = _failed(run_smoke(endpoint.url, Credentials(KEY, SECRET), SERVED, timeout=10).checks)
    assert unfinished["streaming works"].startswith("expected the stream to end with a finish_reason")


def test_an_unreachable_endpoint_fails_every_check_without_hanging() -> None:
    with FakeEndpoint() as gone:
        url = gone.url
    started = time.monotonic()
    report = run_smoke(url, Credentials(KEY, SECRET), SERVED, timeout=2)
    assert not any(c.ok for c in report.checks)
    assert time.monotonic() - started < 30
