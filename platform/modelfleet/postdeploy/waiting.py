"""HTTP clients for the post-deploy steps: follow Modal's 303s, bound the whole wait.

Modal answers a web request that is still running after 150 seconds with ``303 See
Other`` and a ``Location`` -- the original URL plus ``__modal_function_call_id=fc-...``
(the "result URL"). A GET of it does not start a new request: it waits (again up to
150 s) for the original one and answers with its result, or with another 303. Sources:
Modal guide "Request timeouts" (https://modal.com/docs/guide/webhook-timeouts: "an HTTP
status 303 redirect response is returned pointing at the original URL with a special
query parameter linking it that request ... The result URL can be reloaded without
triggering a new request. It will block until the request completes"; browsers follow
up to 20 redirects, 50 minutes). The first request after a deploy waits for vLLM to
boot and the snapshot to be built -- minutes on a large model -- so it meets that 303.

httpx follows no redirects unless told, and its timeouts are per read, not per
request: a chain of redirects could wait ``hops x timeout``. So every client here
follows redirects (303 turns the POST into a GET without a body, as RFC 9110 says and
as Modal's result URL expects), allows enough hops for the whole wait, and checks one
``Deadline`` before each hop, clamping that hop's timeouts to what is left. The openai
SDK follows redirects by itself (``follow_redirects=True`` in its base client); it gets
the same client, so the deadline holds there too.

The client is ``httpx2``, the fork the openai SDK (3.x) is built on: one client type
serves the SDK and the raw checks, and the SDK maps ``httpx2`` timeouts to its own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import httpx2

# Modal's per-request limit for every web endpoint type: past it the request gets 303 to a
# result URL to poll (guide "Request timeouts", https://modal.com/docs/guide/webhook-timeouts).
MODAL_REQUEST_LIMIT_SECONDS = 150.0
# httpx2's own default (httpx2/_config.py DEFAULT_MAX_REDIRECTS); no wait under ~45 min at Modal's limit needs
# more, so at 150 s per hop the deadline binds first. See max_redirects_for.
MIN_REDIRECTS = 20
CONNECT_TIMEOUT_SECONDS = 10.0


class WaitExpired(httpx2.TimeoutException):
    """The whole wait (every redirect hop together) ran out.

    A ``TimeoutException`` so callers (and the openai SDK, which turns it into
    ``APITimeoutError``) treat it as the timeout it is.
    """


@dataclass
class Deadline:
    """A total time budget for one logical request, however many redirect hops it takes."""

    seconds: float
    started: float = field(default_factory=time.monotonic)

    @property
    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.started + self.seconds - time.monotonic())

    @property
    def expired(self) -> bool:
        """Whether nothing is left."""
        return self.remaining <= 0.0

    def timeout(self) -> httpx2.Timeout:
        """Timeouts for the next hop: every phase bounded by what is left of the whole wait."""
        left = self.remaining
        return httpx2.Timeout(left, connect=min(CONNECT_TIMEOUT_SECONDS, left))


def max_redirects_for(total_seconds: float, request_limit: float | None = None) -> int:
    """Hops a wait of ``total_seconds`` can need: one 303 per ``request_limit``, plus one spare, at least ``MIN_REDIRECTS``.

    The deadline is what bounds the wait; the count only stops a redirect loop, so it
    never binds before the deadline does. The floor keeps it from binding first where
    the 303s come sooner than Modal's 150 s (a front that answers 303 early, a scaled-down
    test front): twenty instant hops cost nothing. ``request_limit`` defaults to Modal's,
    read when called.
    """
    limit = MODAL_REQUEST_LIMIT_SECONDS if request_limit is None else request_limit
    return max(MIN_REDIRECTS, max(1, math.ceil(total_seconds / limit)) + 1)


def deadline_client(deadline: Deadline, *, request_limit: float | None = None) -> httpx2.Client:
    """An httpx client that follows redirects and stops every hop at ``deadline``.

    The request hook runs before each hop (the first request and every redirect):
    it fails with ``WaitExpired`` once the deadline has passed and otherwise clamps the
    hop's timeouts to the time left, so the total never exceeds ``deadline.seconds``
    (plus at most one connect).
    """

    limit = MODAL_REQUEST_LIMIT_SECONDS if request_limit is None else request_limit

    def clamp(request: httpx2.Request) -> None:
        if deadline.expired:
            raise WaitExpired(
                f"no answer within {deadline.seconds:.0f}s (following Modal's {limit:.0f}s-request 303s)",
                request=request,
            )
        request.extensions["timeout"] = deadline.timeout().as_dict()

    return httpx2.Client(
        follow_redirects=True,
        max_redirects=max_redirects_for(deadline.seconds, limit),
        timeout=deadline.timeout(),
        event_hooks={"request": [clamp]},
    )
