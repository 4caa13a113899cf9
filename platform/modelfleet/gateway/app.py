"""The gateway's ASGI app: one OpenAI endpoint in front of every model of the fleet.

Order of checks for a model route, each refusal an OpenAI-shaped error that never
reaches a model: key (401), body size (413), JSON and ``model`` (400), model known (404,
listing the key's models) and allowed for the key (403), quotas (429 with Retry-After).
Only then is the request sent -- to the model's endpoint with the model's credentials,
never the client's -- and its answer relayed by the edge's ``RelayResponse`` machinery.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime
from typing import Any, TypeGuard

import aiohttp
import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelfleet.gateway.auth import Authenticator, AuthFailure
from modelfleet.gateway.config import GatewayConfig
from modelfleet.gateway.fleet_metrics import GatewayMetrics
from modelfleet.gateway.keys import KeyRecord, KeyStore
from modelfleet.gateway.ledger import Counts, UsageLedger
from modelfleet.gateway.metering import GpuMeter, UsageTap
from modelfleet.gateway.quotas import QuotaExceeded, Quotas, Reservation
from modelfleet.gateway.routing import Router
from modelfleet.gateway.upstream import (
    DROP_REQUEST_HEADERS,
    ClientGone,
    MeteredRelay,
    StillStarting,
    Upstream,
    UpstreamPool,
    send_holding,
)
from modelfleet.runtime.edge_http import BodyTooLarge, RequestIdMiddleware, error_response, read_body, request_id_of

MODEL_ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
_GENERATING = ("/v1/chat/completions", "/v1/completions")
_USAGE_MEMBER = b'"stream_options":{"include_usage":true},'
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def build_gateway(
    config: GatewayConfig,
    upstreams: Mapping[str, Upstream],
    *,
    key_store: KeyStore,
    ledger: UsageLedger,
    prices: Mapping[str, float],
    metrics: GatewayMetrics | None = None,
) -> Starlette:
    """The gateway app for ``upstreams`` (served name -> how to reach it).

    ``prices``: USD per GPU-hour by GPU type (``FleetSettings.prices.per_hour``); a GPU
    type missing from it is priced 0 (its GPU-seconds are still counted). ``metrics``:
    what /metrics serves (admin keys only; ``gateway/fleet_metrics.py``), by default the
    gateway's counters and the replicas' in-band reports.
    """
    metrics = metrics or GatewayMetrics()
    gateway = _Gateway(config, upstreams, key_store, metrics.tee(ledger), prices)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            group.start_soon(gateway.flush_forever)
            try:
                yield
            finally:
                group.cancel_scope.cancel()
        await gateway.close()

    routes = [
        Route("/health", gateway.health, methods=["GET"]),
        Route("/v1/models", gateway.models, methods=["GET"]),
        metrics.route(gateway.auth),
        *(Route(path, gateway.relay, methods=["POST"]) for path in MODEL_ROUTES),
        Route("/{path:path}", gateway.not_found, methods=ALL_METHODS),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(metrics.middleware)
    app.add_middleware(RequestIdMiddleware)
    return app


class _Gateway:
    """The request handlers and what they share."""

    def __init__(
        self,
        config: GatewayConfig,
        upstreams: Mapping[str, Upstream],
        key_store: KeyStore,
        ledger: UsageLedger,
        prices: Mapping[str, float],
    ) -> None:
        self.config = config
        self.router = Router(upstreams, config.aliases)
        self.auth = Authenticator(key_store, config.key_cache_ttl_s)
        self.ledger = ledger
        self.quotas = Quotas(config.rate_limit_storage, ledger)
        self.pool = UpstreamPool(config.upstream_timeout_s)
        self.meters = {name: GpuMeter(up.gpu_count) for name, up in upstreams.items()}
        self.usd_per_gpu_second = {name: prices.get(up.gpu_type, 0.0) / 3600 for name, up in upstreams.items()}

    async def flush_forever(self) -> None:
        """Write counted usage every ``ledger_flush_s`` (and re-read the totals quotas use)."""
        while True:
            await anyio.to_thread.run_sync(self.ledger.flush, _today())
            await anyio.sleep(self.config.ledger_flush_s)

    async def close(self) -> None:
        """Last flush and the connection pool, when the gateway stops."""
        await anyio.to_thread.run_sync(self.ledger.flush, _today())
        await self.pool.aclose()

    async def health(self, request: Request) -> Response:
        """The gateway's own liveness; never calls a model (it must not wake one)."""
        return JSONResponse({"status": "ok", "models": self.router.names()})

    async def not_found(self, request: Request) -> Response:
        """Every route the gateway does not serve."""
        return error_response(404, f"no route {request.method} {request.url.path} at the fleet gateway", "not_found")

    async def models(self, request: Request) -> Response:
        """``/v1/models``: exactly the names this key may use, in OpenAI's list shape."""
        record = await self._authenticate(request)
        if isinstance(record, Response):
            return record
        created = int(datetime.fromisoformat(record.created).timestamp())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "modelfleet"}
            for name in self.router.allowed_names(record)
        ]
        return JSONResponse({"object": "list", "data": data})

    async def relay(self, request: Request) -> Response:
        """A model route: every check, then the model's answer as it arrives."""
        record = await self._authenticate(request)
        if isinstance(record, Response):
            return record
        try:
            body = await read_body(request, self.config.max_body_bytes)
        except BodyTooLarge:
            return error_response(413, f"request body over {self.config.max_body_bytes} bytes", "too_large")
        except ClientDisconnect:
            return Response(status_code=499)
        payload, problem = _parse(body)
        if problem:
            return error_response(400, problem, "invalid_request_error")
        name = payload["model"]
        served = self.router.served_name(name)
        if served is None:
            listed = ", ".join(self.router.allowed_names(record)) or "none"
            return error_response(
                404, f"model {name!r} not found; models this key may use: {listed}", "model_not_found"
            )
        if served not in self.router.allowed_served(record):
            listed = ", ".join(self.router.allowed_names(record)) or "none"
            return error_response(
                403, f"key {record.name!r} may not use model {name!r}; its models: {listed}", "model_not_allowed"
            )
        stream = payload.get("stream") is True
        options = payload.get("stream_options")
        client_wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        if name == served and stream and "stream_options" not in payload:
            # The common stream (the openai SDK sends no stream_options): ask for usage without re-encoding.
            body = ask_for_usage(body)
        elif name != served or (stream and not client_wants_usage):
            payload["model"] = served
            if stream and not client_wants_usage:
                payload["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
            body = json.dumps(payload).encode()
        # scope["path"], not request.url: Starlette builds a whole URL object for .url, on every request.
        estimate = self._token_estimate(request.scope["path"], payload, body)
        try:
            reservation = await self.quotas.admit(record, estimate)
        except QuotaExceeded as refusal:
            self.ledger.count(_today(), record.name, served, Counts(rejected=1))
            return error_response(429, refusal.message, refusal.limit, refusal.retry_after)
        return await self._forward(request, record, served, body, reservation, stream, client_wants_usage)

    async def _forward(
        self,
        request: Request,
        record: KeyRecord,
        served: str,
        body: bytes,
        reservation: Reservation,
        stream: bool,
        client_wants_usage: bool,
    ) -> Response:
        upstream = self.router.upstreams[served]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in DROP_REQUEST_HEADERS}
        headers["x-request-id"] = request_id_of(request)
        meter = self.meters[served]
        mark = meter.start()

        async def settle(tap: UsageTap | None, failed: bool) -> None:
            gpu_seconds = meter.stop(mark)
            usage = tap.usage if tap else None
            counts = Counts(
                requests=1,
                errors=int(failed),
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                gpu_seconds=gpu_seconds,
                cost_usd=gpu_seconds * self.usd_per_gpu_second[served],
            )
            self.ledger.count(_today(), record.name, served, counts)
            await self.quotas.settle(reservation, record, counts.tokens)

        try:
            answer = await send_holding(
                self.pool,
                upstream,
                request.scope["path"],
                headers,
                body,
                self.config.cold_start_hold_s,
                client_gone=request.is_disconnected,
            )
        except StillStarting:
            await settle(None, True)
            message = f"model {served!r} is still starting after {self.config.cold_start_hold_s:.0f} s; retry shortly"
            return error_response(503, message, "unavailable", 10)
        except ClientGone:
            await settle(None, False)
            return Response(status_code=499)
        except TimeoutError:
            await settle(None, True)
            return error_response(504, f"model {served!r} did not answer in time", "timeout")
        except aiohttp.ClientError:
            await settle(None, True)
            return error_response(502, f"model {served!r} could not be reached", "bad_gateway")
        except BaseException:
            # Cancelled (the server stopping): the reservation and the GPU share must still end.
            with anyio.CancelScope(shield=True):
                await settle(None, True)
            raise
        ok = answer.status < 400
        tap = UsageTap(stream=stream and ok, strip=stream and ok and not client_wants_usage)

        async def on_end(tap: UsageTap, broken: bool) -> None:
            await settle(tap, broken or not ok)

        return MeteredRelay(answer, tap, on_end)

    def _token_estimate(self, path: str, payload: dict[str, Any], body: bytes) -> int:
        """Prompt estimate (body bytes / 4, as OpenAI estimates from characters) + the completions' ceiling."""
        prompt = max(1, len(body) // 4)
        if path not in _GENERATING:
            return prompt
        ceiling = self.config.default_max_tokens
        for field in ("max_completion_tokens", "max_tokens"):
            value = payload.get(field)
            if _positive_int(value):
                ceiling = value
                break
        choices = payload.get("n")
        return prompt + ceiling * (choices if _positive_int(choices) else 1)

    async def _authenticate(self, request: Request) -> KeyRecord | Response:
        try:
            return await self.auth.authenticate(request.headers.get("authorization"))
        except AuthFailure as failure:
            response = error_response(failure.status, failure.message, failure.code)
            response.headers["WWW-Authenticate"] = "Bearer"
            return response


def _parse(body: bytes) -> tuple[dict[str, Any], str | None]:
    """The JSON object of a request and None, or {} and what is wrong with it."""
    try:
        payload = json.loads(body)
    except ValueError:
        return {}, "request body is not valid JSON"
    if not isinstance(payload, dict):
        return {}, "request body must be a JSON object"
    if "model" not in payload:
        return {}, "missing 'model': name the model to use"
    if not isinstance(payload["model"], str):
        return {}, f"'model' must be a string, not {type(payload['model']).__name__}"
    return payload, None


def ask_for_usage(body: bytes) -> bytes:
    """``body`` (a JSON object without ``stream_options``) with ``"stream_options":{"include_usage":true}`` added.

    Spliced in after the object's opening brace: the object has ``model``, so a member
    follows and the added one takes a comma. What json.loads accepted has only whitespace
    before that brace (it refuses a byte-order mark).
    """
    start = body.index(b"{") + 1
    return body[:start] + _USAGE_MEMBER + body[start:]


def _positive_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _today() -> date:
    return datetime.now(UTC).date()
