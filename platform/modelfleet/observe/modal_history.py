"""``fleet plots`` on Modal: each model's load, latency and cost over a window, from Modal's own figures.

Nothing has to have watched the fleet beforehand: Modal kept the figures. Per deployed model
(modal 1.6.4; every call reads Modal's bookkeeping, none sends an input or starts a
container -- tests/contract/test_modal_plots.py counts):

- **Load and cost per minute**: ``.metrics.export(since, until, bucket_size=1 min)``
  (``FunctionGetMetrics`` / ``ServerGetMetrics``, modal/_metrics.py). A ``containers``
  series aggregated by ``mean`` gives the containers held in each minute (and, at the
  price table, $/h); each ``calls`` / ``requests`` series aggregated by ``count`` gives
  that minute's calls (names as Modal sends them, e.g. ``successful_calls_count`` in the
  export docstring). One export holds at most 500 points per series (``_metrics_request``),
  so a window is read in 500-minute pieces.
- **Latency percentiles**: ``Function.stats`` / ``Server.stats(since, until)``
  (``FunctionGetTimeRangeStats`` / ``ServerGetTimeRangeStats``) per step (``STEPS`` steps,
  at least five minutes each): execution time (a classic endpoint) or end-to-end request
  latency (a Server), and what a Server's engine reports to Modal (TTFT, inter-token
  latency, tokens/s).
- **Cost per full hour**: Modal's bill and the price table's figure (modal_history_bill).

The window is at most ``WINDOW_LIMIT_S``: Modal answers time-range stats for at most 7 days
("The maximum time range is 7 days", ``Function.stats`` / ``Server.stats`` docstrings; App
stats also "with a start in the past 30 days", modal/app.py), and the latency panel needs
them. A model whose figures cannot be read leaves a note and the others are still drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from modelfleet.catalog import Catalog
from modelfleet.errors import FleetError
from modelfleet.observe.modal_figures import (
    END_TO_END_LATENCY,
    EXECUTION_TIME,
    INTER_TOKEN_LATENCY,
    TOKENS_IN_PER_S,
    TOKENS_OUT_PER_S,
    TTFT,
    ModalServing,
    serving_lookup,
)
from modelfleet.observe.modal_history_bill import HourlyBills, full_hours, hour_costs, read_hourly_bills
from modelfleet.settings import FleetSettings

WINDOW_LIMIT_S = 7 * 86400
MINUTE_S = 60
POINTS_PER_EXPORT = 500  # modal/_metrics.py: "Metrics are limited to 500 points per series"
STEPS = 48
MIN_STEP_S = 300
COUNT_UNITS = ("calls", "requests")


def check_window(seconds: float, asked: str) -> None:
    """Refuse a window Modal cannot answer, in one line naming its limit and the fix."""
    if seconds > WINDOW_LIMIT_S:
        raise FleetError(
            f"fleet plots: --since {asked}: Modal answers time-range stats for at most 7 days "
            f"(Function.stats / Server.stats, modal 1.6.4) and the latency panel needs them; use --since 7d or less"
        )


@dataclass(frozen=True)
class MinuteSeries:
    """One model's per-minute figures from Modal's metrics: containers held and calls counted, by bucket start."""

    bucket_s: float
    containers: dict[float, float] = field(default_factory=dict)
    counts: dict[str, dict[float, float]] = field(default_factory=dict)

    def container_seconds(self) -> dict[float, float]:
        """Container-seconds per bucket start (mean containers x the bucket's width)."""
        return {at: mean * self.bucket_s for at, mean in self.containers.items()}


@dataclass(frozen=True)
class ModalHistory:
    """Frames in ``fleet top``'s recorded shape (``{"at", "models"}``), each full hour's cost, one line per gap."""

    frames: list[dict[str, Any]]
    costs: list[dict[str, Any]]
    """``CostTruth.as_json()`` per model and full hour (``report.hourly_costs`` reads them)."""
    notes: list[str]


def modal_history(
    settings: FleetSettings,
    catalog: Catalog,
    models: list[str],
    since: float,
    until: float,
    lookup: Callable[[str, str, str], ModalServing | None] = serving_lookup,
    bills_reader: Callable[[str, list[float]], HourlyBills] = read_hourly_bills,
) -> ModalHistory:
    """Every deployed model of ``models`` over [since, until): minute rows, step rows, each full hour's cost."""
    from modal.exception import Error as ModalError

    start = math.floor(since / MINUTE_S) * MINUTE_S
    end = math.floor(until / MINUTE_S) * MINUTE_S  # the partial minute at `until` is excluded, as Modal does
    if end <= start:
        start = end - MINUTE_S
    rows: dict[float, list[dict[str, Any]]] = {}
    notes: list[str] = []
    read: dict[str, tuple[ModalServing, MinuteSeries]] = {}
    environment = settings.modal_environment
    for model in models:
        try:
            serving = lookup(model, settings.app_name(model), environment)
            if serving is None:
                notes.append(f"{model}: not deployed in Modal environment {environment}: nothing of it to draw")
                continue
            minutes = minute_series(serving, start, end)
            steps = step_rows(serving, start, end)
        except ModalError as error:
            notes.append(f"{model}: Modal stats: {type(error).__name__}: {error}; it is left out of the pictures")
            continue
        spec = catalog.models[model].spec
        read[model] = (serving, minutes)
        price = settings.prices.per_hour.get(spec.gpu.type)
        for row in minute_rows(model, minutes, None if price is None else price * spec.gpu.count):
            rows.setdefault(row.pop("at"), []).append(row)
        for row in steps:
            rows.setdefault(row.pop("at"), []).append({"model": model, **row})
    frames: list[dict[str, Any]] = [{"at": at, "models": rows[at]} for at in sorted(rows)]
    costs: list[dict[str, Any]] = []
    hours = full_hours(start, end)
    if read and hours:
        bills = bills_reader(environment, hours)
        if bills.refused is not None:
            notes.append(bills.refused)
        prices = dict(settings.prices.per_hour)
        costs = [
            cost.as_json()
            for model, (serving, minutes) in sorted(read.items())
            for cost in hour_costs(
                model,
                serving.app.app_id,
                catalog.models[model].spec,
                prices,
                minutes.container_seconds(),
                hours,
                bills,
            )
        ]
    return ModalHistory(frames, costs, notes)


def minute_series(serving: ModalServing, start: float, end: float) -> MinuteSeries:
    """Modal's one-minute metrics over [start, end), in pieces of at most ``POINTS_PER_EXPORT`` buckets."""
    source = serving.server if serving.server is not None else serving.function
    containers: dict[float, float] = {}
    counts: dict[str, dict[float, float]] = {}
    bucket_s = float(MINUTE_S)
    piece = POINTS_PER_EXPORT * MINUTE_S
    at = start
    while at < end:
        metrics = source.metrics.export(
            since=_utc(at), until=_utc(min(at + piece, end)), bucket_size=timedelta(seconds=MINUTE_S)
        )
        bucket_s = metrics.bucket_size.total_seconds()
        mean = _first(metrics, lambda s: s.unit == "containers" and s.aggregation == "mean")
        if mean is not None:
            containers.update(_observed(mean))
        for name, series in sorted(metrics.series.items()):
            if series.unit in COUNT_UNITS and series.aggregation == "count":
                counts.setdefault(name, {}).update(_observed(series))
        at += piece
    return MinuteSeries(bucket_s, containers, counts)


def minute_rows(model: str, minutes: MinuteSeries, gpu_price_per_hour: float | None) -> list[dict[str, Any]]:
    """One row per observed minute, at the bucket's middle: containers, calls per minute, $/h at the price table."""
    per_minute = MINUTE_S / minutes.bucket_s
    starts = sorted(set(minutes.containers) | {at for by_at in minutes.counts.values() for at in by_at})
    rows: list[dict[str, Any]] = []
    for at in starts:
        containers = minutes.containers.get(at)
        rows.append(
            {
                "at": at + minutes.bucket_s / 2,
                "model": model,
                "containers": containers,
                "calls_per_minute": {
                    name: by_at[at] * per_minute for name, by_at in sorted(minutes.counts.items()) if at in by_at
                },
                "containers_dollars_per_hour": None
                if containers is None or gpu_price_per_hour is None
                else containers * gpu_price_per_hour,
            }
        )
    return rows


def step_rows(serving: ModalServing, start: float, end: float) -> list[dict[str, Any]]:
    """Latency percentiles (and a Server's engine figures) per step, each row at its step's middle."""
    step = max(MIN_STEP_S, math.ceil((end - start) / STEPS / MINUTE_S) * MINUTE_S)
    rows: list[dict[str, Any]] = []
    at = start
    while at < end:
        until = min(at + step, end)
        rows.append({"at": (at + until) / 2, **_step_figures(serving, at, until)})
        at = until
    return rows


def _step_figures(serving: ModalServing, since: float, until: float) -> dict[str, float | None]:
    """One time-range stats call: the request latency percentiles, and a Server's engine figures."""
    if serving.server is None:
        stats = serving.function.stats(since=_utc(since), until=_utc(until))
        latency = stats.input_percentile_stats.get(EXECUTION_TIME)
        return {"latency_p50": _percentile(latency, 50.0), "latency_p95": _percentile(latency, 95.0)}
    stats = serving.server.stats(since=_utc(since), until=_utc(until))
    latency = stats.request_percentile_stats.get(END_TO_END_LATENCY)
    figures: dict[str, float | None] = {
        "latency_p50": _percentile(latency, 50.0),
        "latency_p95": _percentile(latency, 95.0),
    }
    inference = stats.inference if stats.inference is not None and stats.inference.status == "available" else None
    if inference is None:
        return figures
    ttft = inference.percentile_stats.get(TTFT)
    inter_token = inference.percentile_stats.get(INTER_TOKEN_LATENCY)
    return {
        **figures,
        "ttft_p50": _percentile(ttft, 50.0),
        "ttft_p95": _percentile(ttft, 95.0),
        "tpot_p50": _percentile(inter_token, 50.0),
        "tpot_p95": _percentile(inter_token, 95.0),
        "tokens_in_per_s": inference.scalar_stats.get(TOKENS_IN_PER_S),
        "tokens_out_per_s": inference.scalar_stats.get(TOKENS_OUT_PER_S),
    }


def _first(metrics: Any, wanted: Callable[[Any], bool]) -> Any | None:
    """The first series (by name) that ``wanted`` accepts, as modal_figures picks its container series."""
    return next((metrics.series[name] for name in sorted(metrics.series) if wanted(metrics.series[name])), None)


def _observed(series: Any) -> dict[float, float]:
    """A series' observed points by bucket start (gaps -- ``value`` None -- left out)."""
    return {point.time.timestamp(): float(point.value) for point in series.points if point.value is not None}


def _percentile(distribution: Any | None, percentile: float) -> float | None:
    """One percentile of a ``StatsPercentileDistribution`` (modal/types.py); None when Modal did not report it."""
    if distribution is None:
        return None
    return next((float(p.value) for p in distribution.percentiles if p.percentile == percentile), None)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
