"""Counting what a request used: vLLM's ``usage`` from its answer, and its share of GPU time.

Usage, streamed: the gateway asks vLLM for it (``stream_options.include_usage``), and vLLM
then ends the stream with one extra event, ``"choices":[]`` and a ``"usage":{...}``
object (vllm/entrypoints/openai/chat_completion/serving.py, the ``final_usage_chunk``).
``UsageTap`` reads that event and, if the client did not ask for usage itself, removes it,
so the client gets exactly the stream it would have got from vLLM. Chunks without the
text ``"usage"`` are passed on untouched (one C-speed substring search per chunk; vLLM
leaves the field out of ordinary chunks, ``exclude_unset``).

GPU time: a GPU serves many requests at once, so a request is charged its share of the
model's GPUs while it runs -- ``GpuMeter`` integrates ``gpus / requests in flight`` over
time (processor sharing), so the shares of all requests add up to the GPU-seconds the
model was busy with gateway traffic. Idle time of a warm container is nobody's request
and is not charged to a key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_USAGE = b'"usage"'
_EVENT_END = b"\n\n"


@dataclass
class Usage:
    """Tokens vLLM reported for one request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @classmethod
    def from_json(cls, usage: Any) -> Usage | None:
        """From an OpenAI ``usage`` object, or None if it is not one."""
        if not isinstance(usage, dict):
            return None
        return cls(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


class UsageTap:
    """Watches an answer's bytes on their way to the client and keeps vLLM's ``usage``.

    ``stream``: the answer is SSE; events are passed on whole (an event split across two
    reads goes out when its end arrives) and ``strip`` removes the usage-only event.
    Otherwise the answer is one JSON document, passed on as it arrives and parsed at the end.
    """

    def __init__(self, *, stream: bool, strip: bool, max_json_bytes: int = 64 * 2**20) -> None:
        self.stream = stream
        self.strip = strip
        self.usage: Usage | None = None
        self._buffer = b""
        self._json: list[bytes] = []
        self._json_size = 0
        self._max_json = max_json_bytes

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to send on now for ``chunk``."""
        if not self.stream:
            if self._json_size <= self._max_json:
                self._json.append(chunk)
                self._json_size += len(chunk)
            return chunk
        data = self._buffer + chunk if self._buffer else chunk
        end = data.rfind(_EVENT_END)
        if end < 0:
            self._buffer = data
            return b""
        complete, self._buffer = data[: end + 2], data[end + 2 :]
        if _USAGE not in complete:
            return complete
        return self._events(complete)

    def end(self) -> bytes:
        """What is left when the answer ended (a last event without its blank line, or nothing)."""
        if not self.stream:
            try:
                self.usage = Usage.from_json(json.loads(b"".join(self._json)).get("usage"))
            except (ValueError, AttributeError):
                self.usage = None
            return b""
        rest, self._buffer = self._buffer, b""
        return self._events(rest) if _USAGE in rest else rest

    def _events(self, data: bytes) -> bytes:
        kept = []
        for event in data.split(_EVENT_END):
            if _USAGE in event:
                found = _usage_event(event)
                if found is not None:
                    usage, usage_only = found
                    self.usage = usage
                    if usage_only and self.strip:
                        continue
            kept.append(event)
        return _EVENT_END.join(kept)


def _usage_event(event: bytes) -> tuple[Usage, bool] | None:
    """(usage, whether the event is only usage) of an SSE ``data:`` event carrying usage."""
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                body = json.loads(line[5:])
            except ValueError:
                return None
            usage = Usage.from_json(body.get("usage")) if isinstance(body, dict) else None
            if usage is None:
                return None
            return usage, body.get("choices") == []
    return None


class GpuMeter:
    """One model's GPUs shared among its requests in flight (processor sharing)."""

    def __init__(self, gpus: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.gpus = gpus
        self._clock = clock
        self._in_flight = 0
        self._virtual = 0.0  # GPU-seconds one request running since the start would have got
        self._at = clock()

    def _advance(self) -> None:
        now = self._clock()
        if self._in_flight:
            self._virtual += (now - self._at) * self.gpus / self._in_flight
        self._at = now

    def start(self) -> float:
        """A request starts; returns its mark, to give to ``stop``."""
        self._advance()
        self._in_flight += 1
        return self._virtual

    def stop(self, mark: float) -> float:
        """The request of ``mark`` ended; returns its GPU-seconds."""
        self._advance()
        self._in_flight -= 1
        return self._virtual - mark
