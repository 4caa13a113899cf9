"""The edge: the only HTTP surface a client reaches, in front of vLLM.

vLLM serves far more than the OpenAI API -- with dev mode on (needed for sleep and
wake) it exposes /collective_rpc, /sleep, /server_info -- and its ``--api-key`` guards
only /v1. So the edge forwards an allowlist of public routes, checks tokens where the
platform does not, streams without buffering, and answers everything else with 404
without ever reaching vLLM.

Every answer it relays carries a compact report of its engine's figures in one header
(``runtime/edge_report.py``: in-band, because a serving container has no egress and a
scrape of the public URL would wake GPUs); the gateway strips it. Public endpoints attach
none: anyone may call them, and their metrics are not anyone's (as /metrics answers 404).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
import anyio
import anyio.to_thread
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from yarl import URL

from modelfleet.runtime.edge_http import (
    BodyTooLarge,
    RelayResponse,
    RequestIdMiddleware,
    error_response,
    read_body,
    relay_server,
    request_id_of,
)
from modelfleet.runtime.edge_report import ReplicaReporter
from modelfleet.runtime.tokens import TokenStore, parse_credentials
from modelfleet.spec.model import ModelSpec

log = logging.getLogger("modelfleet.edge")

AuthMode = Literal["modal-proxy", "tokens", "public"]
EngineState = Literal["ready", "starting", "waking", "asleep", "failed"]
PUBLIC_POST_ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
PUBLIC_GET_ROUTES = ("/v1/models",)
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
DEFAULT_REPORT_INTERVAL = 5.0
# Request headers vLLM must not see (credentials) or that describe this hop only.
_DROP_REQUEST = {
    "host",
    "content-length",
    "modal-key",
    "modal-secret",
    "authorization",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "x-request-id",
}
# One body for every auth failure: nothing tells a guesser which half was wrong. Worded
# after Modal's own 401 ("modal-http: missing credentials for proxy authorization"), as JSON
# so OpenAI SDKs show it.
UNAUTHORIZED = {
    "error": {
        "message": "missing or invalid credentials for proxy authorization (send Authorization: Bearer <key>.<secret>, or Modal-Key and Modal-Secret)",
        "type": "unauthorized",
        "code": 401,
    }
}
_WAITING_MESSAGES: dict[EngineState, str] = {
    "starting": "the model is starting; retry shortly",
    "waking": "the model is waking up; retry shortly",
    "asleep": "the model is asleep; retry shortly",
    "failed": "the model is not running: its engine failed and is not restarted",
}


class EdgeGate:
    """The one way an owner tells the edge about its engine: ``mark`` the state as it changes.

    The local supervisor marks it starting, ready or failed as it keeps vLLM alive; a
    benchmark that sleeps and wakes vLLM behind an edge in its own process marks asleep
    and ready. While the state is not "ready" the edge answers 503 with
    Retry-After instead of sending requests to a vLLM that would hang or fail on them.
    The Modal container needs no marks: its edge process starts only once vLLM serves.
    """

    def __init__(self, state: EngineState = "ready") -> None:
        self.state: EngineState = state

    def mark(self, state: EngineState) -> None:
        """Record the engine's state (plain attribute write: safe from any thread)."""
        self.state = state


@dataclass
class EdgeConfig:
    """How one edge behaves; the owner (Modal class or local supervisor) fills it."""

    upstream_url: str
    auth_mode: AuthMode
    token_store: TokenStore | None = None
    # vLLM's Unix socket (``--uds``): every upstream request goes through it; upstream_url names the Host only.
    upstream_socket: str | None = None
    max_body_bytes: int = 8 * 2**20
    upstream_timeout: float = 600.0
    retry_after_seconds: int = 5
    # Extra JSON for /health: the boot kind ("cold"/"restore") and boot seconds, say.
    health_info: Callable[[], dict[str, object]] | None = None
    gate: EdgeGate = field(default_factory=EdgeGate)
    # Seconds between reads of the engine's /metrics for the replica report (while answers
    # are relayed); None: attach no report. ``replica`` names this replica in it (default:
    # the Modal task id, else host and pid).
    report_interval: float | None = DEFAULT_REPORT_INTERVAL
    replica: str | None = None


def auth_mode_for(spec: ModelSpec, *, platform_checks_tokens: bool) -> AuthMode:
    """The auth mode a model's edge gets: public only when its model.toml opts out explicitly.

    ``platform_checks_tokens``: Modal's proxy checks Modal-Key/Modal-Secret before a request
    reaches the container ("modal-proxy"); on the local target the edge checks them itself
    ("tokens"). Both owners (``targets/modal/serving.py``, ``targets/local/supervisor.py``) ask here.
    """
    if spec.auth.public:
        return "public"
    return "modal-proxy" if platform_checks_tokens else "tokens"


def build_edge(config: EdgeConfig) -> Starlette:
    """The ASGI app: allowlisted routes forwarded, everything else 404."""
    if config.auth_mode == "tokens" and config.token_store is None:
        raise ValueError("auth_mode 'tokens' needs a token_store")
    upstream = _Upstream(config)
    reporter = _reporter(config, upstream)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            if reporter is not None:
                group.start_soon(reporter.refresh_forever)
            try:
                yield
            finally:
                group.cancel_scope.cancel()
        await upstream.aclose()

    async def health(request: Request) -> Response:
        info = config.health_info() if config.health_info else {}
        state: str = config.gate.state
        if state == "ready":
            try:
                async with upstream.session().get(upstream.url("/health"), timeout=_HEALTH_TIMEOUT) as answer:
                    state = "ok" if answer.status == 200 else "unavailable"
            except (aiohttp.ClientError, TimeoutError):
                state = "unavailable"
        if state == "ok":
            return JSONResponse({"status": "ok", **info})
        headers = {"Retry-After": str(config.retry_after_seconds)}
        return JSONResponse({"status": state, **info}, status_code=503, headers=headers)

    async def forward(request: Request) -> Response:
        rejection = await _authorize(config, request) or _require_ready(config)
        if rejection:
            return rejection
        if reporter is not None:
            reporter.touch()
        try:
            body = await read_body(request, config.max_body_bytes)
        except BodyTooLarge:
            return error_response(413, f"request body over {config.max_body_bytes} bytes", "too_large")
        except ClientDisconnect:
            return Response(status_code=499)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST}
        # vLLM uses it as its own request id, so its logs and ours line up.
        headers["x-request-id"] = request_id_of(request)
        unavailable = ("the model is not running; retry shortly", "unavailable", config.retry_after_seconds)
        try:
            answer = await upstream.session().request(
                request.method, upstream.url(request.url.path, request.url.query), headers=headers, data=body
            )
        except aiohttp.ConnectionTimeoutError:
            return error_response(503, *unavailable)
        except TimeoutError:
            # No headers within the read timeout; the failed request's connection is closed, so vLLM aborts it.
            return error_response(504, "the model did not answer in time", "timeout")
        except aiohttp.ClientError:
            return error_response(503, *unavailable)
        relayed = RelayResponse(answer)
        if reporter is not None and reporter.header is not None:
            relayed.raw_headers.append(reporter.header)
        return relayed

    async def metrics(request: Request) -> Response:
        if config.auth_mode == "public":
            # An endpoint anyone may call never exposes its metrics.
            return error_response(404, "not found", "not_found")
        return await forward(request)

    async def not_found(request: Request) -> Response:
        return error_response(404, "not found", "not_found")

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *(Route(path, forward, methods=["GET"]) for path in PUBLIC_GET_ROUTES),
        *(Route(path, forward, methods=["POST"]) for path in PUBLIC_POST_ROUTES),
        # Everything else, including a public path with the wrong method, stops here.
        Route("/{path:path}", not_found, methods=ALL_METHODS),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(RequestIdMiddleware)
    return app


def edge_server(config: EdgeConfig, *, host: str, port: int, graceful_shutdown: int | None = None) -> uvicorn.Server:
    """The edge's uvicorn server: the one builder every owner serves the edge with.

    The Modal container (``edge_main``, its own process), the local supervisor (its main
    thread), the benchmarks and the tests all run this, so production serves with the
    settings the GPU benchmarks measured (``edge_http.relay_server``: uvloop, httptools,
    no access log). Serve it with ``run()``, which builds the event loop the config names.

    While it serves in the main thread, uvicorn handles SIGTERM and SIGINT (drain, then
    stop); when it stops it puts back the handlers it found and raises the signal again
    for them (uvicorn 0.54 ``Server.capture_signals``), so an owner that must act after
    the drain installs its handlers first. ``graceful_shutdown``: seconds in-flight
    requests (streams) get to finish after the signal before uvicorn cancels them; None
    waits for them without a limit.
    """
    return relay_server(build_edge(config), host=host, port=port, graceful_shutdown=graceful_shutdown)


_HEALTH_TIMEOUT = aiohttp.ClientTimeout(total=5.0)
_METRICS_TIMEOUT = aiohttp.ClientTimeout(total=5.0)


def _reporter(config: EdgeConfig, upstream: _Upstream) -> ReplicaReporter | None:
    """The replica reporter reading the engine's /metrics through the edge's own pool; None when off or public."""
    if config.report_interval is None or config.auth_mode == "public":
        return None

    async def fetch() -> str | None:
        try:
            async with upstream.session().get(upstream.url("/metrics"), timeout=_METRICS_TIMEOUT) as answer:
                return await answer.text() if answer.status == 200 else None
        except (aiohttp.ClientError, TimeoutError):
            return None

    return ReplicaReporter(fetch, interval=config.report_interval, replica=config.replica)


class _Upstream:
    """The connection pool to vLLM: aiohttp, whose C HTTP parser makes relaying a streamed chunk cheap.

    httpx parsed every chunk of vLLM's chunked SSE answer in pure Python (h11) and cost
    the edge about 0.9 of direct throughput on a GPU at concurrency 64; aiohttp (a vLLM
    dependency already) does the same work in C. The session is made on first use because
    aiohttp binds it to the running event loop, which the edge only has once it serves.
    """

    def __init__(self, config: EdgeConfig) -> None:
        self.base = config.upstream_url.rstrip("/")
        self.socket_path = config.upstream_socket
        # sock_read: the longest silence between two reads (headers or chunks), as httpx's read timeout was.
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=config.upstream_timeout)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The shared session, made in the serving loop the first time it is needed."""
        if self._session is None or self._session.closed:
            # The same pool over vLLM's Unix socket when it serves on one (the local target's
            # isolated engine): aiohttp's UnixConnector is a TCPConnector's sibling.
            connector: aiohttp.BaseConnector = (
                aiohttp.UnixConnector(path=self.socket_path, limit=1000, limit_per_host=0, keepalive_timeout=60.0)
                if self.socket_path
                else aiohttp.TCPConnector(limit=1000, limit_per_host=0, keepalive_timeout=60.0)
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                # Bytes pass as vLLM wrote them (content-encoding included); no cookies between users.
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    def url(self, path: str, query: str = "") -> URL:
        """vLLM's URL for ``path``; the query string passes through as the client encoded it."""
        return URL(f"{self.base}{path}?{query}" if query else f"{self.base}{path}", encoded=True)

    async def aclose(self) -> None:
        """Close the pool when the edge stops."""
        if self._session is not None:
            await self._session.close()


async def _authorize(config: EdgeConfig, request: Request) -> Response | None:
    if config.auth_mode != "tokens":
        return None  # modal-proxy: Modal checked the token before the request got here
    store = config.token_store
    assert store is not None  # build_edge refuses tokens mode without a store
    credentials = parse_credentials(request.headers)
    if credentials is not None:
        if store.remembered(*credentials):
            return None
        # scrypt takes tens of milliseconds: off the event loop, so a guesser cannot stall other requests.
        if await anyio.to_thread.run_sync(store.verify, *credentials):
            return None
    return JSONResponse(UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def _require_ready(config: EdgeConfig) -> Response | None:
    state = config.gate.state
    if state == "ready":
        return None
    return error_response(503, _WAITING_MESSAGES[state], "unavailable", config.retry_after_seconds)
