"""Reading vLLM's usage from an answer (and hiding the usage event the client did not ask for); GPU-time shares."""

from __future__ import annotations

import json

from modelfleet.gateway.metering import GpuMeter, UsageTap

CHUNK = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
USAGE = b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}\n\n'
DONE = b"data: [DONE]\n\n"


def relay(tap: UsageTap, stream: bytes, size: int) -> bytes:
    """Feed ``stream`` in pieces of ``size`` bytes; what the client would get."""
    out = b"".join(tap.feed(stream[at : at + size]) for at in range(0, len(stream), size))
    return out + tap.end()


def test_usage_event_is_read_and_removed_however_the_stream_is_cut() -> None:
    stream = CHUNK + CHUNK + USAGE + DONE
    for size in (1, 7, 64, len(stream)):
        tap = UsageTap(stream=True, strip=True)
        assert relay(tap, stream, size) == CHUNK + CHUNK + DONE, size
        assert tap.usage is not None and (tap.usage.prompt_tokens, tap.usage.completion_tokens) == (7, 2)


def test_usage_event_is_kept_when_the_client_asked_for_it() -> None:
    tap = UsageTap(stream=True, strip=False)
    assert relay(tap, CHUNK + USAGE + DONE, 5) == CHUNK + USAGE + DONE
    assert tap.usage is not None and tap.usage.completion_tokens == 2


def test_a_chunk_carrying_choices_and_usage_is_never_removed() -> None:
    both = (
        b'data: {"choices":[{"index":0,"delta":{"content":"x"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\n'
    )
    tap = UsageTap(stream=True, strip=True)
    assert relay(tap, both + DONE, 9) == both + DONE


def test_json_answers_pass_unchanged_and_give_their_usage() -> None:
    body = json.dumps({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}).encode()
    tap = UsageTap(stream=False, strip=False)
    assert relay(tap, body, 4) == body
    assert tap.usage is not None and tap.usage.prompt_tokens == 3
    broken = UsageTap(stream=False, strip=False)
    assert relay(broken, b'{"usage": ', 4) == b'{"usage": ' and broken.usage is None


def test_gpu_seconds_are_shared_among_requests_in_flight() -> None:
    now = [0.0]
    meter = GpuMeter(2, clock=lambda: now[0])
    first = meter.start()
    now[0] = 1.0
    second = meter.start()
    now[0] = 3.0
    assert meter.stop(first) == 2 * 1.0 + 2 * 2.0 / 2  # alone for 1 s, then half of 2 GPUs for 2 s
    now[0] = 4.0
    assert meter.stop(second) == 2 * 2.0 / 2 + 2 * 1.0
