"""vLLM's control client: the HTTP calls an owner makes to its own vLLM (health, warm-up, sleep, wake).

The process that answers them is ``engine.Engine``'s; this module only speaks HTTP to
its loopback port. Every call that can fail raises ``EngineError`` -- a refused
connection, a timeout, an error status, an answer that is not what vLLM sends -- with
one line naming the call, vLLM's URL and what came back, so a hook's failure reads
"POST /sleep?level=1 to http://127.0.0.1:8001 failed: HTTP 500 ..." rather than an
httpx traceback. Sleep and wake exist only with ``--enable-sleep-mode`` and
``VLLM_SERVER_DEV_MODE=1`` (vLLM's sleep-mode docs), which the Modal image sets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from modelfleet.errors import FleetError

WARM_UP_PROMPT = "Say hello in one short sentence."
# A warm-up request runs lazy initialisation (CUDA graphs, compile) on the first call: minutes, not seconds.
WARM_UP_TIMEOUT = 300.0
# Sleep level 1 copies every weight to pinned host memory; wake copies it back: large models take a while.
SLEEP_WAKE_TIMEOUT = 600.0
PROBE_TIMEOUT = 10.0
SLEEP_LEVELS = (1, 2)
ANSWER_EXCERPT = 200


class EngineError(FleetError):
    """vLLM failed to start, answer, sleep or wake; the message says which call, where, and what came back."""


@dataclass(frozen=True)
class EngineClient:
    """Control calls to one vLLM server at ``url`` (loopback: the edge keeps these routes from clients).

    ``served_name`` is the model name warm-up requests ask for; ``sleep_mode`` whether the
    server was started with ``--enable-sleep-mode`` (without it vLLM has no /sleep route,
    and on CPU it refuses the flag), so sleep and wake fail with the reason up front.
    ``socket_path``: vLLM serves on that Unix socket (``--uds``), and every call goes
    through it (``url`` then only names the Host header).
    """

    url: str
    served_name: str
    sleep_mode: bool
    socket_path: str | None = None

    def _request(self, method: str, path: str, *, timeout: float, json: Any = None) -> httpx.Response:
        transport = httpx.HTTPTransport(uds=self.socket_path) if self.socket_path else None
        with httpx.Client(transport=transport, timeout=timeout) as client:
            return client.request(method, f"{self.url}{path}", json=json)

    @property
    def where(self) -> str:
        """vLLM's address in messages: the URL, or the socket it serves on."""
        return f"unix:{self.socket_path}" if self.socket_path else self.url

    def healthy(self) -> bool:
        """Whether vLLM answers /health with 200 now; False while it cannot be reached (still loading)."""
        try:
            return self._request("GET", "/health", timeout=PROBE_TIMEOUT).status_code == 200
        except httpx.HTTPError:
            return False

    def warm_up(self, requests: int, *, max_tokens: int = 16) -> float:
        """Send ``requests`` real chat requests so lazy initialisation happens before a snapshot; seconds."""
        body = {
            "model": self.served_name,
            "messages": [{"role": "user", "content": WARM_UP_PROMPT}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        started = time.monotonic()
        for _ in range(requests):
            self._call("POST", "/v1/chat/completions", json=body, timeout=WARM_UP_TIMEOUT)
        return time.monotonic() - started

    def sleep(self, level: int = 1) -> float:
        """Put vLLM to sleep (level 1: weights to CPU RAM, KV cache dropped); seconds taken."""
        self.require_sleep_mode()
        if level not in SLEEP_LEVELS:
            raise EngineError(f"sleep level {level} does not exist; vLLM knows {' and '.join(map(str, SLEEP_LEVELS))}")
        started = time.monotonic()
        self._call("POST", f"/sleep?level={level}", timeout=SLEEP_WAKE_TIMEOUT)
        return time.monotonic() - started

    def wake(self) -> float:
        """Wake vLLM (after a snapshot restore); seconds taken."""
        self.require_sleep_mode()
        started = time.monotonic()
        self._call("POST", "/wake_up", timeout=SLEEP_WAKE_TIMEOUT)
        return time.monotonic() - started

    def is_sleeping(self) -> bool:
        """Whether vLLM reports itself asleep."""
        self.require_sleep_mode()
        answer = self._call("GET", "/is_sleeping", timeout=PROBE_TIMEOUT)
        try:
            value = answer.json()["is_sleeping"]
        except (ValueError, KeyError, TypeError):
            raise EngineError(
                f"GET /is_sleeping to {self.where} answered {answer.text[:ANSWER_EXCERPT]!r}, "
                'not vLLM\'s {"is_sleeping": ...}'
            ) from None
        return bool(value)

    def require_sleep_mode(self) -> None:
        """Raise unless this server can sleep: sleep mode needs vLLM started with it, which needs a GPU."""
        if not self.sleep_mode:
            raise EngineError(
                "sleep and wake need vLLM started with --enable-sleep-mode, which needs a GPU "
                "(vLLM on CPU refuses it: 'Sleep mode is not supported on current platform'); "
                "snapshots apply to the Modal target only"
            )

    def _call(self, method: str, path: str, *, timeout: float, json: Any = None) -> httpx.Response:
        """One request to vLLM; any failure becomes an ``EngineError`` naming the call."""
        call = f"{method} {path} to {self.where}"
        try:
            answer = self._request(method, path, json=json, timeout=timeout)
        except httpx.TimeoutException:
            raise EngineError(f"{call} failed: no answer within {timeout:.0f}s") from None
        except httpx.HTTPError as error:
            raise EngineError(f"{call} failed: {error.__class__.__name__}; is vLLM running?") from None
        if answer.status_code != 200:
            raise EngineError(f"{call} failed: HTTP {answer.status_code} {answer.text[:ANSWER_EXCERPT]}")
        return answer
