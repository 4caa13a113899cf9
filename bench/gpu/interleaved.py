"""Added time to first token, measured with the fronts interleaved in one load on one engine.

Why: at concurrency 16 the side-by-side method (``bench/gpu/gateway.py``: a ``vllm bench serve``
run per side, sides alternating) gives run medians that differ by 10-40 ms between two runs of
the *same* side -- sixteen closed-loop clients with equal prompt and output lengths fall into
lock-step waves, and each run locks into its own pattern -- so a difference of a few
milliseconds between the sides is below what a handful of pairs resolves (gpu-gateway-c16.json:
eight pairs, per-pair differences from -6 to +47 ms). Here every client sends its requests to the
sides in turn (request ``i`` goes to side ``i mod n``), so all sides meet the same engine, the
same waves and the same prefix-cache state at the same moments, and the difference of their
median TTFTs is the time the front adds, with the engine's variation shared out equally.

Requests are what ``vllm bench serve``'s random dataset sends, made here: ``input_len`` random
token ids (distinct per request: no prefix-cache hits), ``output_len`` tokens with ``ignore_eos``,
streamed from ``/v1/completions``. TTFT is the time from sending to the first event that carries
text. The spread is reported two ways: the difference in each of ``segments`` consecutive slices
of the run, and a percentile bootstrap (requests resampled per side), which treats requests as
independent -- they are not quite (waves), so read it with the segments.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

TOKEN_IDS = (1000, 30000)  # ordinary vocabulary of Llama-3's tokenizer: no special tokens


@dataclass(frozen=True)
class Side:
    """One front: where it listens and the headers a request to it carries."""

    name: str
    url: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Sent:
    """One request's outcome."""

    index: int
    side: str
    ttft_s: float | None
    latency_s: float
    events: int
    status: int


def prompts(count: int, input_len: int, seed: int) -> list[list[int]]:
    """``count`` distinct random prompts of ``input_len`` token ids."""
    rng = random.Random(seed)
    return [[rng.randrange(*TOKEN_IDS) for _ in range(input_len)] for _ in range(count)]


async def run(
    sides: Sequence[Side],
    model: str,
    prompt_ids: Sequence[list[int]],
    *,
    concurrency: int,
    output_len: int,
    timeout_s: float = 600.0,
) -> list[Sent]:
    """Send every prompt, ``concurrency`` at a time, request ``i`` to ``sides[i % len(sides)]``."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    queue = iter(range(len(prompt_ids)))
    sent: list[Sent] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            for index in queue:
                side = sides[index % len(sides)]
                sent.append(await _one(session, side, model, index, prompt_ids[index], output_len))

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return sorted(sent, key=lambda s: s.index)


async def _one(
    session: aiohttp.ClientSession, side: Side, model: str, index: int, prompt: list[int], output_len: int
) -> Sent:
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": output_len,
        "ignore_eos": True,
        "temperature": 0.0,
        "stream": True,
    }
    started = time.perf_counter()
    ttft: float | None = None
    events = 0
    async with session.post(f"{side.url}/v1/completions", json=body, headers=dict(side.headers)) as answer:
        buffer = b""
        async for chunk in answer.content.iter_any():
            buffer += chunk
            *complete, buffer = buffer.split(b"\n\n")
            for event in complete:
                if _has_text(event):
                    events += 1
                    if ttft is None:
                        ttft = time.perf_counter() - started
        status = answer.status
    return Sent(index, side.name, ttft, time.perf_counter() - started, events, status)


def _has_text(event: bytes) -> bool:
    if not event.startswith(b"data: ") or event == b"data: [DONE]":
        return False
    try:
        choices = json.loads(event[6:]).get("choices") or []
    except ValueError:
        return False
    return any(c.get("text") for c in choices)


def summarise(sent: Sequence[Sent], baseline: str, *, segments: int = 4, resamples: int = 2000) -> dict[str, Any]:
    """Per side: counts and TTFT percentiles; per other side: its median TTFT minus the baseline's."""
    by_side: dict[str, list[Sent]] = {}
    for s in sent:
        by_side.setdefault(s.side, []).append(s)
    out: dict[str, Any] = {"requests": len(sent), "sides": {}, "added_median_ttft_ms": {}}
    for name, items in by_side.items():
        ttfts = [s.ttft_s * 1000 for s in items if s.ttft_s is not None and s.status == 200]
        out["sides"][name] = {
            "requests": len(items),
            "failed": sum(1 for s in items if s.status != 200 or s.ttft_s is None),
            "median_ttft_ms": round(statistics.median(ttfts), 3) if ttfts else None,
            "p90_ttft_ms": round(_quantile(ttfts, 0.9), 3) if ttfts else None,
            "p99_ttft_ms": round(_quantile(ttfts, 0.99), 3) if ttfts else None,
            "median_latency_ms": round(statistics.median(s.latency_s * 1000 for s in items), 2),
            "events": sum(s.events for s in items),
        }
    base = _ttfts(by_side.get(baseline, []))
    rng = random.Random(0)
    for name, items in by_side.items():
        if name == baseline or not base:
            continue
        other = _ttfts(items)
        if not other:
            continue
        boots = sorted(
            statistics.median(rng.choices(other, k=len(other))) - statistics.median(rng.choices(base, k=len(base)))
            for _ in range(resamples)
        )
        out["added_median_ttft_ms"][name] = {
            "run": round(statistics.median(other) - statistics.median(base), 3),
            "bootstrap_95": [round(_quantile(boots, 0.025), 3), round(_quantile(boots, 0.975), 3)],
            "segments": _segment_differences(sent, name, baseline, segments),
        }
    return out


def _ttfts(items: Sequence[Sent]) -> list[float]:
    return [s.ttft_s * 1000 for s in items if s.ttft_s is not None and s.status == 200]


def _segment_differences(sent: Sequence[Sent], side: str, baseline: str, segments: int) -> list[float | None]:
    size = max(1, len(sent) // segments)
    result: list[float | None] = []
    for start in range(0, size * segments, size):
        part = sent[start : start + size]
        mine, base = _ttfts([s for s in part if s.side == side]), _ttfts([s for s in part if s.side == baseline])
        result.append(round(statistics.median(mine) - statistics.median(base), 3) if mine and base else None)
    return result


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]
