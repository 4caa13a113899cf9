"""Per-model rows of the fleet view, from two rounds of replica scrapes and the price tables.

Latency percentiles come from the replicas' histograms summed (since each replica
started); tokens/s from counter increases between the two rounds, replica by replica (a
replica that restarted starts from 0; one that appeared has no rate yet). Cost is what the
running and starting replicas' GPUs cost now at fleet.toml's prices, and per 1M output
tokens at the current output rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from modelfleet.observe.local_source import ReplicaScrape
from modelfleet.observe.samples import (
    GENERATION_TOKENS,
    KV_CACHE_USAGE,
    PROMPT_TOKENS,
    REQUESTS_RUNNING,
    REQUESTS_WAITING,
    TIME_PER_OUTPUT_TOKEN,
    TTFT,
    EngineSample,
    combined,
    increase,
)
from modelfleet.spec.cost import hourly_cost
from modelfleet.spec.model import ModelSpec

TOKENS_PER_MILLION = 1_000_000.0


@dataclass(frozen=True)
class ModelView:
    """One model's line in ``fleet top`` (and its JSON form)."""

    model: str
    replicas_running: int
    replicas_starting: int
    requests_running: float
    requests_waiting: float
    requests_done: float
    """Requests whose first token came (the TTFT histogram's count), summed over the live replicas."""
    ttft_p50: float | None
    ttft_p95: float | None
    tpot_p50: float | None
    tpot_p95: float | None
    tokens_in_per_s: float | None
    tokens_out_per_s: float | None
    tokens_in: float
    tokens_out: float
    kv_cache_use: float | None
    """Mean fraction of KV-cache blocks in use over the running replicas."""
    dollars_per_hour: float | None
    dollars_per_million_out: float | None

    def as_json(self) -> dict[str, Any]:
        """The row as plain JSON values."""
        return asdict(self)


def model_views(
    before: Iterable[ReplicaScrape],
    now: Iterable[ReplicaScrape],
    specs: dict[str, ModelSpec],
    prices: dict[str, float],
) -> list[ModelView]:
    """One view per model seen ``now``, sorted by name; ``before`` gives the rates (may be empty)."""
    previous = {(r.model, r.replica): r for r in before}
    by_model: dict[str, list[ReplicaScrape]] = {}
    for replica in now:
        by_model.setdefault(replica.model, []).append(replica)
    return [_view(model, replicas, previous, specs.get(model), prices) for model, replicas in sorted(by_model.items())]


def _view(
    model: str,
    replicas: list[ReplicaScrape],
    previous: dict[tuple[str, str], ReplicaScrape],
    spec: ModelSpec | None,
    prices: dict[str, float],
) -> ModelView:
    samples = [r.sample for r in replicas if r.sample is not None]
    total = combined(samples)
    rate_in, rate_out = _rates(replicas, previous)
    running = len(samples)
    starting = len(replicas) - running
    per_hour = hourly_cost(spec, prices, running + starting) if spec is not None else None
    ttft = total.histograms.get(TTFT)
    tpot = total.histograms.get(TIME_PER_OUTPUT_TOKEN)
    return ModelView(
        model=model,
        replicas_running=running,
        replicas_starting=starting,
        requests_running=total.gauge(REQUESTS_RUNNING),
        requests_waiting=total.gauge(REQUESTS_WAITING),
        requests_done=ttft.count if ttft else 0.0,
        ttft_p50=ttft.quantile(0.5) if ttft else None,
        ttft_p95=ttft.quantile(0.95) if ttft else None,
        tpot_p50=tpot.quantile(0.5) if tpot else None,
        tpot_p95=tpot.quantile(0.95) if tpot else None,
        tokens_in_per_s=rate_in,
        tokens_out_per_s=rate_out,
        tokens_in=total.counter(PROMPT_TOKENS),
        tokens_out=total.counter(GENERATION_TOKENS),
        kv_cache_use=total.gauge(KV_CACHE_USAGE) / running if running else None,
        dollars_per_hour=per_hour,
        dollars_per_million_out=_per_million(per_hour, rate_out),
    )


def _rates(
    replicas: list[ReplicaScrape], previous: dict[tuple[str, str], ReplicaScrape]
) -> tuple[float | None, float | None]:
    """Input and output tokens/s summed over the replicas scraped in both rounds; None without such a pair."""
    rate_in = rate_out = 0.0
    paired = False
    for replica in replicas:
        before = previous.get((replica.model, replica.replica))
        if replica.sample is None or before is None or before.sample is None or replica.at <= before.at:
            continue
        seconds = replica.at - before.at
        rate_in += _increase(before.sample, replica.sample, PROMPT_TOKENS) / seconds
        rate_out += _increase(before.sample, replica.sample, GENERATION_TOKENS) / seconds
        paired = True
    return (rate_in, rate_out) if paired else (None, None)


def _increase(before: EngineSample, after: EngineSample, name: str) -> float:
    return increase(before.counter(name), after.counter(name))


def _per_million(per_hour: float | None, tokens_out_per_s: float | None) -> float | None:
    """$ per 1M output tokens at the current rate; None while nothing is generated (it would be infinite)."""
    if per_hour is None or not tokens_out_per_s:
        return None
    return per_hour / (tokens_out_per_s * 3600.0) * TOKENS_PER_MILLION
