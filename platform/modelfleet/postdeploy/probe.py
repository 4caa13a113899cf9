"""One boot, measured from outside: time to first token of a real request, then ``/health``.

The order matters. On Modal, a request to an app scaled to zero is what starts a
container; reading ``/health`` first would start it and make the timed request warm.
So the probe sends a real streaming chat request first and times its first token (the
cold start as a user feels it), then asks ``/health`` which kind of boot that was
(``cold`` or ``restore``) and how long the container says booting took.

While an engine restarts the edge answers 503 with ``Retry-After``; the probe keeps the
clock running and retries until its deadline, so the time includes the whole wait. A
boot longer than Modal's 150-second request limit answers ``303`` with a result URL to
poll; the probe follows it within the same deadline (``waiting``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx2

from modelfleet.errors import FleetError
from modelfleet.postdeploy.waiting import Deadline, deadline_client
from modelfleet.runtime.tokens import Credentials

PROBE_PROMPT = "Say hello."
RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_PAUSE_SECONDS = 1.0


class ProbeError(FleetError):
    """The endpoint did not answer a real request in time, or refused it."""


@dataclass(frozen=True)
class BootProbe:
    """What one cold start looked like: boot kind and seconds (from /health), and time to first token."""

    boot: str  # "cold", "restore", or "unknown" when /health does not say
    boot_seconds: float | None
    ttft_seconds: float


def probe_boot(url: str, credentials: Credentials, served_name: str, *, timeout: float) -> BootProbe:
    """Time the first token of one streaming chat request, then read the boot kind from ``/health``.

    ``timeout`` is the whole wait for the first token (a cold boot, redirects included).
    """
    url = url.rstrip("/")
    ttft = time_to_first_token(url, credentials, served_name, timeout=timeout)
    boot, boot_seconds = read_boot(url, credentials, timeout=timeout)
    return BootProbe(boot=boot, boot_seconds=boot_seconds, ttft_seconds=round(ttft, 3))


def time_to_first_token(url: str, credentials: Credentials, served_name: str, *, timeout: float) -> float:
    """Seconds from sending the request until the first content token arrives.

    Retries 5xx-while-booting and follows Modal's 303s, all within ``timeout`` in total.
    """
    body = {
        "model": served_name,
        "messages": [{"role": "user", "content": PROBE_PROMPT}],
        "max_tokens": 8,
        "temperature": 0,
        "stream": True,
    }
    deadline = Deadline(timeout)
    started = deadline.started
    last = "no answer"
    with deadline_client(deadline) as client:
        while not deadline.expired:
            try:
                with client.stream(
                    "POST", f"{url}/v1/chat/completions", json=body, headers=credentials.headers()
                ) as response:
                    if response.status_code == 200:
                        first = _first_token_at(response)
                        if first is None:
                            raise ProbeError(f"{url}: the stream ended without a token")
                        return first - started
                    if response.status_code in (401, 403):
                        raise ProbeError(
                            f"{url}: the token (key {credentials.key}) was rejected with {response.status_code}"
                        )
                    if response.status_code not in RETRY_STATUSES:
                        response.read()
                        raise ProbeError(f"{url}: expected 200, got {response.status_code}: {response.text[:200]}")
                    last = str(response.status_code)
            except httpx2.TooManyRedirects:
                raise ProbeError(f"{url}: still redirecting after {client.max_redirects} hops") from None
            except httpx2.TransportError as error:
                last = error.__class__.__name__
            time.sleep(min(RETRY_PAUSE_SECONDS, deadline.remaining))
    raise ProbeError(f"{url}: no token within {timeout:.0f}s (last answer: {last})")


def _first_token_at(response: httpx2.Response) -> float | None:
    """The monotonic time of the first content delta; the rest of the stream is drained."""
    first: float | None = None
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            break
        if first is None and _has_content(data):
            first = time.monotonic()
    return first


def _has_content(data: str) -> bool:
    try:
        event = json.loads(data)
    except json.JSONDecodeError:
        return False
    choices = event.get("choices") if isinstance(event, dict) else None
    if not choices:
        return False
    delta = choices[0].get("delta") or {}
    return bool(delta.get("content"))


def read_boot(url: str, credentials: Credentials, *, timeout: float = 60.0) -> tuple[str, float | None]:
    """(boot kind, boot seconds) from the edge's ``/health`` JSON; ``unknown`` when it does not say.

    Follows Modal's 303s within ``timeout``: a container stopped since the request before
    boots again, and that may outlast the request limit.
    """
    try:
        with deadline_client(Deadline(timeout)) as client:
            response = client.get(f"{url}/health", headers=credentials.headers())
        body = response.json()
    except (httpx2.HTTPError, ValueError):
        return "unknown", None
    if not isinstance(body, dict):
        return "unknown", None
    boot = body.get("boot")
    seconds = body.get("boot_seconds")
    return (
        boot if isinstance(boot, str) and boot else "unknown",
        float(seconds) if isinstance(seconds, int | float) else None,
    )
