"""The edge: the only HTTP surface a client reaches, in front of vLLM.

vLLM serves far more than the OpenAI API -- with dev mode on (needed for sleep and
wake) it exposes /collective_rpc, /sleep, /server_info -- and its ``--api-key`` guards
only /v1. So the edge forwards an allowlist of public routes, checks tokens where the
platform does not, streams without buffering, and answers everything else with 404
without ever reaching vLLM.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

import httpx
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from modelfleet.runtime.tokens import TokenStore, parse_credentials

log = logging.getLogger("modelfleet.edge")

AuthMode = Literal["modal-proxy", "tokens", "public"]
PUBLIC_POST_ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
PUBLIC_GET_ROUTES = ("/v1/models",)
# Request headers that vLLM must not see (credentials) or that describe this hop only.
_DROP_REQUEST = {
    "host",
    "content-length",
    "modal-key",
    "modal-secret",
    "authorization",
    "connection",
    "transfer-encoding",
}
_DROP_RESPONSE = {"content-length", "connection", "transfer-encoding", "keep-alive", "server", "date"}
UNAUTHORIZED = {"error": {"message": "missing or invalid credentials", "type": "unauthorized", "code": 401}}


@dataclass
class EdgeConfig:
    """How one edge behaves; the owner (Modal class or local supervisor) fills it."""

    upstream_url: str
    auth_mode: AuthMode
    token_store: TokenStore | None = None
    max_body_bytes: int = 8 * 2**20
    upstream_timeout: float = 600.0
    retry_after_seconds: int = 5
    # Extra JSON for /health: the boot kind ("cold"/"restore") and boot seconds, say.
    health_info: Callable[[], dict[str, object]] | None = None
    # False while the engine sleeps, wakes or restarts: requests get 503 + Retry-After.
    is_ready: Callable[[], bool] | None = None


class _Rejected(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def build_edge(config: EdgeConfig) -> Starlette:
    """The ASGI app: allowlisted routes forwarded, everything else 404."""
    if config.auth_mode == "tokens" and config.token_store is None:
        raise ValueError("auth_mode 'tokens' needs a token_store")
    client = httpx.AsyncClient(
        base_url=config.upstream_url,
        timeout=httpx.Timeout(config.upstream_timeout, connect=5.0),
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    async def health(request: Request) -> Response:
        ready = config.is_ready() if config.is_ready else True
        info = config.health_info() if config.health_info else {}
        if ready:
            try:
                upstream = await client.get("/health", timeout=5.0)
                ready = upstream.status_code == 200
            except httpx.HTTPError:
                ready = False
        body = {"status": "ok" if ready else "unavailable", **info}
        headers = {} if ready else {"Retry-After": str(config.retry_after_seconds)}
        return JSONResponse(body, status_code=200 if ready else 503, headers=headers)

    async def forward(request: Request) -> Response:
        try:
            _authorize(config, request)
            _require_ready(config)
            body = await _read_body(request, config.max_body_bytes)
        except _Rejected as rejected:
            return rejected.response
        except ClientDisconnect:
            return Response(status_code=499)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST}
        upstream_request = client.build_request(
            request.method, request.url.path, params=request.query_params, headers=headers, content=body
        )
        try:
            upstream = await client.send(upstream_request, stream=True)
        except httpx.TimeoutException:
            return _error(504, "the model did not answer in time", "timeout")
        except httpx.HTTPError:
            return _error(503, "the model is not running; retry shortly", "unavailable", config.retry_after_seconds)
        return StreamingResponse(
            _relay(upstream, config),
            status_code=upstream.status_code,
            headers={k: v for k, v in upstream.headers.items() if k.lower() not in _DROP_RESPONSE},
        )

    async def metrics(request: Request) -> Response:
        if config.auth_mode == "public":
            # An unauthenticated endpoint never exposes its metrics.
            return _not_found()
        return await forward(request)

    async def not_found(request: Request) -> Response:
        return _not_found()

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *(Route(path, forward, methods=["GET"]) for path in PUBLIC_GET_ROUTES),
        *(Route(path, forward, methods=["POST"]) for path in PUBLIC_POST_ROUTES),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(_RequestIdMiddleware)
    return app


async def _relay(upstream: httpx.Response, config: EdgeConfig) -> AsyncIterator[bytes]:
    """Pass chunks through as they arrive; closing the upstream response cancels generation in vLLM."""
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.TimeoutException:
        log.warning("upstream stalled past %.0fs; closing the stream", config.upstream_timeout)
    finally:
        await upstream.aclose()


def _authorize(config: EdgeConfig, request: Request) -> None:
    if config.auth_mode != "tokens":
        return  # modal-proxy: Modal checked the token before the request got here
    credentials = parse_credentials({k.lower(): v for k, v in request.headers.items()})
    assert config.token_store is not None
    if credentials is None or not config.token_store.verify(*credentials):
        raise _Rejected(JSONResponse(UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"}))


def _require_ready(config: EdgeConfig) -> None:
    if config.is_ready and not config.is_ready():
        raise _Rejected(_error(503, "the model is waking up; retry shortly", "unavailable", config.retry_after_seconds))


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _Rejected(_error(413, f"request body over {limit} bytes", "too_large"))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Rejected(_error(413, f"request body over {limit} bytes", "too_large"))
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str, kind: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": status}}, status_code=status, headers=headers
    )


def _not_found() -> JSONResponse:
    return _error(404, "not found", "not_found")


class _RequestIdMiddleware:
    """Every response carries ``x-request-id``; one log line per request, never bodies or tokens."""

    def __init__(self, app: Callable[..., object]) -> None:
        self.app = app

    async def __call__(
        self, scope: dict[str, object], receive: Callable[..., object], send: Callable[..., object]
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # type: ignore[misc]
            return
        request_id = uuid.uuid4().hex
        started = time.monotonic()
        status = 0

        async def send_with_id(message: dict[str, object]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])  # type: ignore[call-overload]
                headers = list(message.get("headers", []))  # type: ignore[call-overload]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)  # type: ignore[misc]

        try:
            await self.app(scope, receive, send_with_id)  # type: ignore[misc]
        finally:
            log.info(
                "%s %s %s %.1fms id=%s",
                scope.get("method"),
                scope.get("path"),
                status,
                (time.monotonic() - started) * 1000,
                request_id,
            )
