"""What the gateway tests share: a recording OpenAI upstream, and a gateway served by real uvicorn in a thread.

``RecordingUpstream`` answers chat/completions in vLLM's shapes (the final usage-only
stream event when ``stream_options.include_usage`` is set, ``usage`` in JSON answers)
and records every request it gets, so a test can prove a refused request never arrived.
It stands in for vLLM only in tests of the gateway's own logic; the e2e tests use vLLM.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from modelfleet.gateway.app import build_gateway
from modelfleet.gateway.config import GatewayConfig
from modelfleet.gateway.key_stores import LocalKeyStore
from modelfleet.gateway.keys import KeyLimits, new_key
from modelfleet.gateway.ledger import Ledger
from modelfleet.gateway.server import gateway_server
from modelfleet.gateway.upstream import Upstream
from modelfleet.runtime.ports import free_port
from tests.support.waiting import wait_until


@dataclass
class Received:
    """One request the upstream got: its path, JSON body and headers (lower-case names)."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class RecordingUpstream:
    """A vLLM-shaped upstream; ``unavailable`` answers 503 that many times first (a cold start)."""

    unavailable: int = 0
    received: list[Received] = field(default_factory=list)
    refused: int = 0
    words: int = 4

    def app(self) -> Starlette:
        """The ASGI app."""

        async def generate(request: Request) -> Response:
            body = await request.json()
            if self.unavailable > 0:
                self.unavailable -= 1
                self.refused += 1
                return JSONResponse({"status": "starting"}, status_code=503, headers={"Retry-After": "1"})
            self.received.append(Received(request.url.path, body, {k.lower(): v for k, v in request.headers.items()}))
            completion = int(body.get("max_tokens") or self.words)
            usage = {"prompt_tokens": 7, "completion_tokens": completion, "total_tokens": 7 + completion}
            if not body.get("stream"):
                return JSONResponse(
                    {"id": "cmpl-1", "model": body["model"], "choices": [{"index": 0, "text": "ok"}], "usage": usage}
                )
            wants_usage = (body.get("stream_options") or {}).get("include_usage") is True

            async def events() -> Any:
                for index in range(completion):
                    chunk = {
                        "id": "c",
                        "model": body["model"],
                        "choices": [{"index": 0, "delta": {"content": f"w{index}"}}],
                    }
                    yield f"data: {json.dumps(chunk)}\n\n"
                    await asyncio.sleep(0)
                if wants_usage:
                    yield f"data: {json.dumps({'id': 'c', 'model': body['model'], 'choices': [], 'usage': usage})}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        routes = [Route(path, generate, methods=["POST"]) for path in ("/v1/chat/completions", "/v1/completions")]
        return Starlette(routes=routes)


@contextmanager
def serving(app: Any, server: uvicorn.Server | None = None) -> Iterator[str]:
    """Serve ``app`` with real uvicorn on a free port in a thread; yields its base URL."""
    port = free_port()
    server = server or uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    server.config.port = port
    thread = threading.Thread(target=server.run, name="server", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 20, interval=0.02)
    if not server.started:
        raise RuntimeError("the server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def serving_gateway(app: Starlette) -> Iterator[str]:
    """A gateway app served by ``gateway_server`` (the production uvicorn settings); yields its URL."""
    with serving(app, gateway_server(app, host="127.0.0.1", port=0, graceful_shutdown=5)) as url:
        yield url


SERVED = "served-a"
OTHER = "served-b"
CHAT = {"model": SERVED, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


class Fleet:
    """A recording upstream under two served names, a key store and a ledger in tmp_path, and gateways on them."""

    def __init__(self, tmp_path: Path, stack: ExitStack) -> None:
        self.upstream = RecordingUpstream()
        self.upstream_url = stack.enter_context(serving(self.upstream.app()))
        self.store = LocalKeyStore(tmp_path / "keys.json")
        self.ledger_path = tmp_path / "usage.sqlite"
        self.stack = stack
        self.ledgers: list[Ledger] = []  # each gateway's own, on the shared file

    def key(self, name: str, **limits: object) -> str:
        """A new key's text."""
        record, key = new_key(name, KeyLimits(**limits))  # type: ignore[arg-type]
        self.store.add(record)
        return key

    def gateway(self, **config: object) -> str:
        """A gateway (its own process state: caches, rate windows) on the shared stores; its URL."""
        settings = GatewayConfig(**{"aliases": {"gpt-4o-mini": SERVED}, "ledger_flush_s": 0.2, **config})  # type: ignore[arg-type]
        upstreams = {
            SERVED: Upstream(self.upstream_url, {"Modal-Key": "wk-up", "Modal-Secret": "ws-up"}, "H100", 1),
            OTHER: Upstream(self.upstream_url, {}, "L4", 1),
        }
        ledger = Ledger(self.ledger_path)
        self.ledgers.append(ledger)
        app = build_gateway(settings, upstreams, key_store=self.store, ledger=ledger, prices={"H100": 3.6})
        return self.stack.enter_context(serving_gateway(app))


def bearer(key: str) -> dict[str, str]:
    """The header the openai SDK sends for ``api_key``."""
    return {"Authorization": f"Bearer {key}"}


def error_of(response: httpx.Response) -> dict[str, object]:
    """The ``error`` object of an OpenAI-shaped error body (and nothing else in it)."""
    body = response.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])
