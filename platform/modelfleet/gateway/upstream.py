"""Reaching a model: its endpoint and credentials, holding through cold starts, relaying the answer.

The relay is the edge's own (``runtime.edge_http.RelayResponse``: chunks go out as they
arrive, a client hanging up closes the model's request) with one addition: every chunk
passes a ``UsageTap`` on its way (the relay's ``chunks`` filter), and when the answer ends the request is settled (usage,
errors, GPU time) exactly once, however it ended.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
import anyio
from starlette.types import Receive, Scope, Send
from yarl import URL

from modelfleet.gateway.metering import UsageTap
from modelfleet.runtime.edge_http import RelayResponse

# Credentials and hop headers never go from the client to a model: the gateway's key is
# not the model's, and each model gets its own credentials from ``Upstream.headers``.
DROP_REQUEST_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "authorization",
        "modal-key",
        "modal-secret",
        "cookie",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "x-request-id",
    }
)
_HOLD_STEP_S = (0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Upstream:
    """One served model as the gateway reaches it.

    ``base_url``: the model's endpoint (its edge: local ``http://127.0.0.1:PORT``, or the
    Modal web URL), without ``/v1``. ``headers``: its credentials (``Modal-Key`` and
    ``Modal-Secret`` of a proxy token). ``gpu_type``/``gpu_count``: what one container
    runs on, to price its GPU time.
    """

    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    gpu_type: str = ""
    gpu_count: int = 1

    def url(self, path: str) -> URL:
        """The model's URL for ``path``."""
        return URL(f"{self.base_url.rstrip('/')}{path}", encoded=True)


class UpstreamPool:
    """One aiohttp session for every model (C HTTP parser, keep-alive), made in the serving loop."""

    def __init__(self, read_timeout_s: float) -> None:
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=read_timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The shared session, made on first use (aiohttp binds it to the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1000, limit_per_host=0, keepalive_timeout=60.0),
                timeout=self.timeout,
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def aclose(self) -> None:
        """Close the pool when the gateway stops."""
        if self._session is not None:
            await self._session.close()


class StillStarting(Exception):
    """The model kept answering 503 (or refusing connections) until the hold deadline."""


class ClientGone(Exception):
    """The client hung up while its request was held for a starting model."""


async def send_holding(
    pool: UpstreamPool,
    upstream: Upstream,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    hold_s: float,
    *,
    client_gone: Callable[[], Awaitable[bool]] | None = None,
) -> aiohttp.ClientResponse:
    """POST/GET to the model; while it answers 503 or is not listening yet, retry until ``hold_s`` passes.

    A 503 from the model's edge (starting, waking, asleep) or a refused connection means
    the request was not processed, so sending it again is safe. Any other answer is
    returned as soon as its headers arrive, so a stream starts at once. Raises
    ``StillStarting`` at the deadline, ``ClientGone`` when ``client_gone()`` says the client
    left while held (no reason to wake a model for nobody); aiohttp's errors for anything else.
    """
    deadline = time.monotonic() + hold_s
    method = "POST" if body else "GET"
    attempt = 0
    while True:
        try:
            answer = await pool.session().request(
                method, upstream.url(path), headers={**headers, **upstream.headers}, data=body or None
            )
        except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError):
            answer = None
        if answer is not None and answer.status != 503:
            return answer
        wait = _HOLD_STEP_S[min(attempt, len(_HOLD_STEP_S) - 1)]
        if answer is not None:
            retry_after = answer.headers.get("Retry-After", "")
            if retry_after.isdigit():
                wait = min(wait, float(retry_after))
            answer.release()
        left = deadline - time.monotonic()
        if left <= 0:
            raise StillStarting
        attempt += 1
        await anyio.sleep(min(wait, left))
        if client_gone is not None and await client_gone():
            raise ClientGone


class MeteredRelay(RelayResponse):
    """``RelayResponse`` whose chunks pass a ``UsageTap``; ``on_end(tap, broken)`` runs once at the end."""

    def __init__(
        self,
        upstream: aiohttp.ClientResponse,
        tap: UsageTap,
        on_end: Callable[[UsageTap, bool], Awaitable[None]],
    ) -> None:
        super().__init__(upstream, chunks=tap)
        self.tap = tap
        self.on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Relay, then settle -- also when the client hung up or the model broke off."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.on_end(self.tap, self.broken)
