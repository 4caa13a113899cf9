"""One engine's vLLM ``/metrics`` as numbers: counters, gauges and histograms, label sets summed.

Parsed with prometheus-client's own text parser (``text_string_to_metric_families``), not
regular expressions: vLLM's exposition has escaped label values, ``_created`` samples and
several label sets per name (``engine``, ``model_name``), and the parser handles them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

# The vLLM series the fleet view reads (vllm/v1/metrics/loggers.py names them).
PROMPT_TOKENS = "vllm:prompt_tokens_total"
GENERATION_TOKENS = "vllm:generation_tokens_total"
REQUESTS_RUNNING = "vllm:num_requests_running"
REQUESTS_WAITING = "vllm:num_requests_waiting"
KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"
TTFT = "vllm:time_to_first_token_seconds"
TIME_PER_OUTPUT_TOKEN = "vllm:request_time_per_output_token_seconds"


@dataclass(frozen=True)
class Histogram:
    """A cumulative Prometheus histogram: upper bounds (``le``, ascending, +Inf last) and counts at each."""

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]
    total: float
    """Sum of the observed values (``_sum``)."""

    @property
    def count(self) -> float:
        """Observations in all buckets (the +Inf bucket's count)."""
        return self.cumulative[-1] if self.cumulative else 0.0

    def plus(self, other: Histogram) -> Histogram:
        """This histogram and ``other`` as one (two replicas' requests): same bounds required."""
        if other.bounds != self.bounds:
            raise ValueError(f"histogram bounds differ: {self.bounds} vs {other.bounds}; replicas run other vLLMs")
        return Histogram(
            self.bounds,
            tuple(a + b for a, b in zip(self.cumulative, other.cumulative, strict=True)),
            self.total + other.total,
        )

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile as Prometheus's ``histogram_quantile`` estimates it; None without observations.

        Linear interpolation inside the bucket holding the rank; a rank in the +Inf bucket
        answers the highest finite bound (promql/quantile.go does the same).
        """
        if self.count <= 0:
            return None
        rank = q * self.count
        lower_bound, lower_count = 0.0, 0.0
        for bound, cumulative in zip(self.bounds, self.cumulative, strict=True):
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower_bound
                if cumulative == lower_count:
                    return bound
                return lower_bound + (bound - lower_bound) * (rank - lower_count) / (cumulative - lower_count)
            lower_bound, lower_count = bound, cumulative
        return lower_bound


@dataclass(frozen=True)
class EngineSample:
    """One scrape of one engine: each series summed over its label sets."""

    counters: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)
    histograms: dict[str, Histogram] = field(default_factory=dict)

    def counter(self, name: str) -> float:
        """A counter's value (0 when the engine does not report it)."""
        return self.counters.get(name, 0.0)

    def gauge(self, name: str) -> float:
        """A gauge's value (0 when the engine does not report it)."""
        return self.gauges.get(name, 0.0)


def parse_metrics(text: str) -> EngineSample:
    """An engine's ``/metrics`` text as an ``EngineSample`` (vLLM's and anything else it exposes)."""
    counters: dict[str, float] = {}
    gauges: dict[str, float] = {}
    histograms: dict[str, Histogram] = {}
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counters[sample.name] = counters.get(sample.name, 0.0) + sample.value
        elif family.type == "gauge":
            for sample in family.samples:
                gauges[sample.name] = gauges.get(sample.name, 0.0) + sample.value
        elif family.type == "histogram":
            histograms[family.name] = _histogram(family.name, family.samples)
    return EngineSample(counters, gauges, histograms)


def _histogram(name: str, samples: list[Sample]) -> Histogram:
    """Bucket counts per bound summed over the label sets (``engine``, ``model_name``)."""
    buckets: dict[float, float] = {}
    total = 0.0
    for sample in samples:
        if sample.name == f"{name}_bucket":
            bound = float(sample.labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + sample.value
        elif sample.name == f"{name}_sum":
            total += sample.value
    bounds = tuple(sorted(buckets))
    return Histogram(bounds, tuple(buckets[b] for b in bounds), total)


def combined(samples: list[EngineSample]) -> EngineSample:
    """Several replicas of one model as one: counters, gauges and histograms summed."""
    counters: dict[str, float] = {}
    gauges: dict[str, float] = {}
    histograms: dict[str, Histogram] = {}
    for sample in samples:
        for name, value in sample.counters.items():
            counters[name] = counters.get(name, 0.0) + value
        for name, value in sample.gauges.items():
            gauges[name] = gauges.get(name, 0.0) + value
        for name, histogram in sample.histograms.items():
            histograms[name] = histograms[name].plus(histogram) if name in histograms else histogram
    return EngineSample(counters, gauges, histograms)


def increase(before: float, after: float) -> float:
    """A counter's increase between two scrapes; a restarted engine's counter starts again from 0."""
    return after if after < before else after - before
