"""The edge's ASGI plumbing: relaying vLLM's answer chunk by chunk, request ids, errors, the server.

Kept apart from the routing in ``edge.py`` because this is where the two properties
that are easy to lose live: nothing is buffered (each chunk vLLM writes goes out at
once) and a client that hangs up closes the upstream request, so vLLM stops
generating for nobody.
"""

from __future__ import annotations

import importlib.util
import logging
import time
import uuid
from typing import Any, Protocol

import aiohttp
import anyio
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("modelfleet.edge")

# Response headers that describe vLLM's hop, not ours.
_DROP_RESPONSE = {
    name.encode()
    for name in ("content-length", "connection", "keep-alive", "transfer-encoding", "server", "date", "x-request-id")
}


def error_response(status: int, message: str, kind: str, retry_after: int | None = None) -> JSONResponse:
    """An OpenAI-shaped JSON error, so SDKs show the message."""
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": status}}, status_code=status, headers=headers
    )


class BodyTooLarge(Exception):
    """A request body over the owner's limit (the edge's and the gateway's answer is 413)."""


async def read_body(request: Request, limit: int) -> bytes:
    """The whole request body, refused as soon as it (or its declared length) passes ``limit`` bytes.

    The edge and the gateway read every body before relaying it: the edge to relay it
    whole, the gateway to read ``model`` from it. Neither holds more than ``limit``.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def request_id_of(request: Request) -> str:
    """The id the middleware gave this request."""
    return str(request.scope.get("modelfleet.request_id", ""))


class ChunkFilter(Protocol):
    """What a relay may do to the bytes on their way: the gateway's ``UsageTap`` is one."""

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to send on now for ``chunk`` (b"" to hold them back)."""
        ...

    def end(self) -> bytes:
        """The bytes still held when the answer ended."""
        ...


class RelayResponse(Response):
    """vLLM's response, passed on as it arrives; hanging up closes the upstream request.

    ``chunks``, when given, sees every chunk on its way (the gateway meters usage with it);
    the edge relays without one. ``broken`` says afterwards whether the model broke off or
    stalled (a client hanging up is not the model's failure).
    """

    def __init__(self, upstream: aiohttp.ClientResponse, chunks: ChunkFilter | None = None) -> None:
        self.upstream = upstream
        self.chunks = chunks
        self.broken = False
        self.status_code = upstream.status
        self.background = None
        # aiohttp keeps the raw header bytes: no decode/encode round trip per header.
        self.raw_headers = [
            (name.lower(), value) for name, value in upstream.raw_headers if name.lower() not in _DROP_RESPONSE
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pump chunks while watching for the client's disconnect; always close upstream."""
        try:
            async with anyio.create_task_group() as group:

                async def watch_disconnect() -> None:
                    # The body was read already, so the next message is the hang-up (or the end).
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(watch_disconnect)
                await self._pump(send)
                group.cancel_scope.cancel()
        except OSError:
            pass  # the server says the client is gone (ASGI 2.4 servers raise on send)
        finally:
            # Synchronous, so it runs even while we are being cancelled: when the client
            # left, this close is exactly what tells vLLM to abort the generation.
            # close() drops the connection (vLLM sees the hang-up); a finished stream's goes back to the pool.
            if self.upstream.content.is_eof():
                self.upstream.release()
            else:
                self.upstream.close()

    async def _pump(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        chunks = self.chunks
        try:
            # iter_any: whatever arrived since the last read, at once (no re-chunking, no buffering).
            async for chunk in self.upstream.content.iter_any():
                out = chunks.feed(chunk) if chunks is not None else chunk
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
        except TimeoutError:
            self.broken = True
            log.warning("upstream stalled past its timeout; ending the stream")
        except aiohttp.ClientError as error:
            self.broken = True
            log.warning("upstream broke mid-response (%s); ending the stream", error.__class__.__name__)
        rest = chunks.end() if chunks is not None else b""
        await send({"type": "http.response.body", "body": rest, "more_body": False})


class RequestIdMiddleware:
    """Every response carries ``x-request-id``; one log line per request, never bodies or tokens."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope["modelfleet.request_id"] = request_id
        started = time.monotonic()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # The path only: query strings and bodies may carry user data.
            log.info(
                "%s %s %s %.1fms id=%s",
                scope.get("method"),
                scope.get("path"),
                status,
                (time.monotonic() - started) * 1000,
                request_id,
            )


def relay_server(app: ASGIApp, *, host: str, port: int, graceful_shutdown: int | None = None) -> uvicorn.Server:
    """A uvicorn server for an app that relays streams (the edge; the gateway too, which reuses this plumbing).

    uvloop and httptools where installed: the per-chunk work then runs in C, not in asyncio
    and h11 (uvicorn's "auto" picks them too but falls back silently; naming them makes a
    missing one visible). No access log: ``RequestIdMiddleware`` writes one line per
    request without query strings, and uvicorn's would duplicate it. ``graceful_shutdown``:
    seconds in-flight requests get to finish after SIGTERM; None waits without a limit.
    """
    options: dict[str, Any] = {}
    if importlib.util.find_spec("uvloop") is not None:
        options["loop"] = "uvloop"
    if importlib.util.find_spec("httptools") is not None:
        options["http"] = "httptools"
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,
        timeout_graceful_shutdown=graceful_shutdown,
        **options,
    )
    return uvicorn.Server(config)
