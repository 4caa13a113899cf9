"""The fleet's own Prometheus series, built on prometheus-client's exposition (never hand-written text).

A custom collector turns each round of replica scrapes into families labelled ``model``,
``target``, ``environment`` and (per replica) ``replica``. Replica series are kept for a
time-to-live after their last good scrape, and not one second longer: a replica that dies
leaves no series older than its TTL, and a missed scrape does not blank a live one.
``fleet metrics`` prints it; the gateway serves it at /metrics behind an admin key
(``observe.gateway_route``, mounted by ``gateway/fleet_metrics.py``).

A replica is anything shaped like ``ReplicaFigures``: a local scrape of an engine
(``local_source.ReplicaScrape``) or a report a model edge attached to an answer the gateway
relayed (``gateway/fleet_metrics.py``). This module imports neither source at run time, so
the gateway's container (no local target, no psutil) can build the same families.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from modelfleet.observe.samples import (
    GENERATION_TOKENS,
    KV_CACHE_USAGE,
    PROMPT_TOKENS,
    REQUESTS_RUNNING,
    REQUESTS_WAITING,
    TIME_PER_OUTPUT_TOKEN,
    TTFT,
    EngineSample,
    Histogram,
)
from modelfleet.spec.cost import hourly_cost

if TYPE_CHECKING:
    from modelfleet.spec.model import ModelSpec

DEFAULT_TTL = 60.0
REPLICA_LABELS = ["model", "target", "environment", "replica"]
MODEL_LABELS = ["model", "target", "environment"]


class ReplicaFigures(Protocol):
    """One replica as last read: which model, which replica, its engine figures (None: starting), and when."""

    @property
    def model(self) -> str: ...

    @property
    def replica(self) -> str: ...

    @property
    def sample(self) -> EngineSample | None: ...

    @property
    def at(self) -> float: ...


@dataclass
class ReplicaStore:
    """The last good scrape of each replica, forgotten ``ttl`` seconds after it was taken."""

    ttl: float = DEFAULT_TTL
    replicas: dict[tuple[str, str], ReplicaFigures] = field(default_factory=dict)
    starting: dict[str, int] = field(default_factory=dict)

    def update(self, scrapes: Iterable[ReplicaFigures], now: float) -> None:
        """Take a round: answered replicas replace their last scrape; expired ones go."""
        self.starting = {}
        for scrape in scrapes:
            if scrape.sample is not None:
                self.replicas[(scrape.model, scrape.replica)] = scrape
            else:
                self.starting[scrape.model] = self.starting.get(scrape.model, 0) + 1
        self.replicas = {key: r for key, r in self.replicas.items() if r.at >= now - self.ttl}

    def live(self) -> list[ReplicaFigures]:
        """Replicas whose last good scrape is within the TTL."""
        return sorted(self.replicas.values(), key=lambda r: (r.model, r.replica))


@dataclass(eq=False)  # identity-hashed: the registry keys its collectors by the object
class FleetCollector:
    """A prometheus-client collector: each ``collect()`` scrapes the fleet once and reports it."""

    scrape: Callable[[], Sequence[ReplicaFigures]]
    target: str
    environment: str
    specs: dict[str, ModelSpec]
    prices: dict[str, float]
    store: ReplicaStore = field(default_factory=ReplicaStore)
    clock: Callable[[], float] = time.time

    def collect(self) -> Iterator[Metric]:
        """The fleet's families for this round (the registry calls it on every exposition)."""
        self.store.update(self.scrape(), self.clock())
        yield from fleet_families(self.store, self.target, self.environment, self.specs, self.prices)


def fleet_families(
    store: ReplicaStore, target: str, environment: str, specs: dict[str, ModelSpec], prices: dict[str, float]
) -> Iterator[Metric]:
    """Replicas, requests, KV cache, tokens, latency histograms and $/h as metric families."""
    replicas = GaugeMetricFamily("fleet_replicas", "Replicas of a model by state.", labels=[*MODEL_LABELS, "state"])
    cost = GaugeMetricFamily("fleet_cost_dollars_per_hour", "What the model's replicas cost now.", labels=MODEL_LABELS)
    running = GaugeMetricFamily("fleet_requests_running", "Requests being generated.", labels=REPLICA_LABELS)
    waiting = GaugeMetricFamily("fleet_requests_waiting", "Requests queued.", labels=REPLICA_LABELS)
    kv_cache = GaugeMetricFamily("fleet_kv_cache_usage_ratio", "KV-cache blocks in use (0..1).", labels=REPLICA_LABELS)
    prompt = CounterMetricFamily("fleet_prompt_tokens", "Input tokens processed.", labels=REPLICA_LABELS)
    generated = CounterMetricFamily("fleet_generation_tokens", "Output tokens generated.", labels=REPLICA_LABELS)
    ttft = HistogramMetricFamily("fleet_time_to_first_token_seconds", "Time to first token.", labels=REPLICA_LABELS)
    tpot = HistogramMetricFamily(
        "fleet_time_per_output_token_seconds", "Time per output token after the first.", labels=REPLICA_LABELS
    )
    live = store.live()
    models = sorted({r.model for r in live} | set(store.starting))
    for model in models:
        count_running = sum(1 for r in live if r.model == model)
        count_starting = store.starting.get(model, 0)
        replicas.add_metric([model, target, environment, "running"], count_running)
        replicas.add_metric([model, target, environment, "starting"], count_starting)
        if model in specs:
            cost.add_metric(
                [model, target, environment], hourly_cost(specs[model], prices, count_running + count_starting)
            )
    for replica in live:
        sample = replica.sample
        assert sample is not None  # the store keeps answered scrapes only
        labels = [replica.model, target, environment, replica.replica]
        running.add_metric(labels, sample.gauge(REQUESTS_RUNNING))
        waiting.add_metric(labels, sample.gauge(REQUESTS_WAITING))
        kv_cache.add_metric(labels, sample.gauge(KV_CACHE_USAGE))
        prompt.add_metric(labels, sample.counter(PROMPT_TOKENS))
        generated.add_metric(labels, sample.counter(GENERATION_TOKENS))
        for family, name in ((ttft, TTFT), (tpot, TIME_PER_OUTPUT_TOKEN)):
            if name in sample.histograms:
                histogram = sample.histograms[name]
                family.add_metric(labels, _buckets(histogram), histogram.total)
    yield from (replicas, cost, running, waiting, kv_cache, prompt, generated, ttft, tpot)


def _buckets(histogram: Histogram) -> list[tuple[str, float]]:
    return [
        ("+Inf" if math.isinf(b) else repr(b), c) for b, c in zip(histogram.bounds, histogram.cumulative, strict=True)
    ]


def fleet_registry(collector: FleetCollector) -> CollectorRegistry:
    """A registry of its own holding only the fleet's collector (not this process's default metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def prometheus_text(registry: CollectorRegistry) -> str:
    """The registry in Prometheus's text format."""
    return generate_latest(registry).decode()


def json_text(registry: CollectorRegistry) -> str:
    """The registry's samples as JSON: one object per sample (name, type, labels, value)."""
    samples = [
        {"name": sample.name, "type": family.type, "labels": sample.labels, "value": sample.value}
        for family in registry.collect()
        for sample in family.samples
    ]
    return json.dumps(samples, indent=2)
