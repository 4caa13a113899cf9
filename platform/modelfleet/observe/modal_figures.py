"""A model's last hour as Modal itself counts it: time-range stats, metrics and app stats, through the public client.

What is read, per deployed model (modal 1.6.4; every call reads Modal's bookkeeping, none
sends an input or starts a container):

- ``Function.stats(since, until)`` (``FunctionGetTimeRangeStats``, modal/_functions.py) for a
  classic web endpoint, ``Server.stats(...)`` (``ServerGetTimeRangeStats``, modal/_server.py)
  for a Modal Server: inputs or requests by outcome, containers started / active / creating
  / errored, latency percentiles, and -- a Server only -- what its inference engine reports
  to Modal: time to first token, inter-token latency, tokens/s in and out (modal/types.py
  ``ServerStats.InferenceStats``; key names as modal/cli/server.py reads them).
- ``.metrics.export(since, until, bucket_size)`` (``FunctionGetMetrics`` / ``ServerGetMetrics``,
  modal/_metrics.py): time series in one-minute buckets. Modal does not publish its series
  names in the client, so the fleet reads them by their documented shape only: each series
  has a ``unit`` ("seconds, calls, containers, or requests", api_pb2.pyi
  ``FunctionMetricSeries``) and its aggregation is the name's last ``_`` part
  (``_object_metrics``). Container-seconds are the sum over buckets of a ``containers``
  series aggregated by ``mean`` times the bucket width; every series' latest value is
  passed on as it is.
- ``App.lookup(name).stats(since, until)`` (``AppGetOrCreate`` + ``AppGetTimeRangeStats``,
  modal/app.py): containers and errors of every function of the app (billing is per app).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from modelfleet.targets.modal.app import SERVER_CLASS

HOUR_S = 3600.0
METRICS_BUCKET = timedelta(minutes=1)
# Modal's percentile keys (modal/cli/function.py `_INPUT_METRIC_ORDER`, modal/cli/server.py).
EXECUTION_TIME = "Execution time (s)"
END_TO_END_LATENCY = "End-to-end latency (s)"
TTFT = "time_to_first_token"
INTER_TOKEN_LATENCY = "inter_token_latency"
TOKENS_IN_PER_S = "input_tokens_per_second"
TOKENS_OUT_PER_S = "output_tokens_per_second"


@dataclass(frozen=True)
class ModalServing:
    """The Modal objects behind one deployed model: its serving Function, its Server (if one serves), its App."""

    model: str
    app_name: str
    function: Any
    server: Any | None
    app: Any


@dataclass(frozen=True)
class SeriesValue:
    """A Modal metrics series' unit and latest observed value."""

    unit: str
    value: float


@dataclass(frozen=True)
class ModalFigures:
    """One model's figures over [since, until) (Unix seconds), as Modal reports them; None where it reports nothing."""

    model: str
    since: float
    until: float
    inputs_succeeded: int
    inputs_failed: int
    """Failed and timed-out inputs (a Server: requests answered with a status >= 400)."""
    containers_active: int
    containers_started: int
    containers_creating: int
    container_errors: int
    app_containers_active: int
    """Containers of every function of the app (what the app's bill covers)."""
    latency_p50: float | None
    latency_p95: float | None
    ttft_p50: float | None = None
    ttft_p95: float | None = None
    inter_token_p50: float | None = None
    inter_token_p95: float | None = None
    tokens_in_per_s: float | None = None
    tokens_out_per_s: float | None = None
    container_seconds: dict[float, float] = field(default_factory=dict)
    """Container-seconds per metrics bucket start (Unix seconds) from a ``containers``/``mean`` series; empty if none."""
    series: dict[str, SeriesValue] = field(default_factory=dict)

    def container_seconds_between(self, since: float, until: float) -> float | None:
        """Container-seconds in the buckets starting in [since, until); None when Modal reported no container series."""
        if not self.container_seconds:
            return None
        return sum(seconds for start, seconds in self.container_seconds.items() if since <= start < until)

    def as_json(self) -> dict[str, Any]:
        """Plain JSON values (the per-bucket container-seconds left out: the cost truth sums them)."""
        document = asdict(self)
        document.pop("container_seconds")
        return document


def serving_lookup(model: str, app_name: str, environment: str) -> ModalServing | None:
    """The deployed app's serving objects, hydrated; None if the app is not deployed.

    The live version is a Modal Server or a classic web endpoint (targets/modal/primitive.py);
    both are backed by one Function. ``_get_service_function`` (modal/_server.py) and
    ``_get_class_service_function`` (modal/cls.py) are the client's own accessors for it:
    modal 1.6.4 has no public ``get_current_stats`` on a Server or a Cls.
    """
    import modal
    from modal.exception import NotFoundError

    server: Any | None = None
    try:
        server = modal.Server.from_name(app_name, SERVER_CLASS, environment_name=environment).hydrate()
        function = server._get_service_function()
    except NotFoundError:
        try:
            cls = modal.Cls.from_name(app_name, SERVER_CLASS, environment_name=environment).hydrate()
        except NotFoundError:
            return None
        function = cls._get_class_service_function()
    app = modal.App.lookup(app_name, environment_name=environment)
    return ModalServing(model, app_name, function, server, app)


def read_figures(serving: ModalServing, since: float, until: float, metrics_since: float) -> ModalFigures:
    """Stats and app stats over [since, until), metrics from ``metrics_since`` (to cover a full billing hour)."""
    start, end = _utc(since), _utc(until)
    source = serving.server if serving.server is not None else serving.function
    stats = source.stats(since=start, until=end)
    metrics = source.metrics.export(since=_utc(metrics_since), until=end, bucket_size=METRICS_BUCKET)
    app_stats = serving.app.stats(since=start, until=end)
    app_active = app_stats.functions.total.containers.total + app_stats.servers.total.containers.total
    common: dict[str, Any] = {
        "model": serving.model,
        "since": since,
        "until": until,
        "containers_active": stats.container_total_count,
        "containers_started": stats.container_started_count,
        "containers_creating": stats.container_creating_at_end_count,
        "container_errors": stats.container_error_count,
        "app_containers_active": app_active,
        "container_seconds": _container_seconds(metrics),
        "series": _latest(metrics),
    }
    if serving.server is None:
        latency = stats.input_percentile_stats.get(EXECUTION_TIME)
        return ModalFigures(
            inputs_succeeded=stats.input_success_count,
            inputs_failed=stats.input_failure_count + stats.input_timeout_count,
            latency_p50=_percentile(latency, 50.0),
            latency_p95=_percentile(latency, 95.0),
            **common,
        )
    failed = sum(count for code, count in stats.request_count_by_status_code.items() if code >= 400)
    latency = stats.request_percentile_stats.get(END_TO_END_LATENCY)
    inference = stats.inference if stats.inference is not None and stats.inference.status == "available" else None
    ttft = inference.percentile_stats.get(TTFT) if inference else None
    inter_token = inference.percentile_stats.get(INTER_TOKEN_LATENCY) if inference else None
    return ModalFigures(
        inputs_succeeded=stats.request_count - failed,
        inputs_failed=failed,
        latency_p50=_percentile(latency, 50.0),
        latency_p95=_percentile(latency, 95.0),
        ttft_p50=_percentile(ttft, 50.0),
        ttft_p95=_percentile(ttft, 95.0),
        inter_token_p50=_percentile(inter_token, 50.0),
        inter_token_p95=_percentile(inter_token, 95.0),
        tokens_in_per_s=inference.scalar_stats.get(TOKENS_IN_PER_S) if inference else None,
        tokens_out_per_s=inference.scalar_stats.get(TOKENS_OUT_PER_S) if inference else None,
        **common,
    )


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _percentile(distribution: Any | None, percentile: float) -> float | None:
    """One percentile of a ``StatsPercentileDistribution`` (modal/types.py); None when Modal did not report it."""
    if distribution is None:
        return None
    return next((float(p.value) for p in distribution.percentiles if p.percentile == percentile), None)


def _container_seconds(metrics: Any) -> dict[float, float]:
    """Container-seconds per bucket from the first ``containers`` series aggregated by ``mean`` (none: empty)."""
    bucket = metrics.bucket_size.total_seconds()
    for name in sorted(metrics.series):
        series = metrics.series[name]
        if series.unit == "containers" and series.aggregation == "mean":
            return {point.time.timestamp(): point.value * bucket for point in series.points if point.value is not None}
    return {}


def _latest(metrics: Any) -> dict[str, SeriesValue]:
    """Each series' latest observed point (gaps skipped); series without an observation are left out."""
    latest: dict[str, SeriesValue] = {}
    for name, series in sorted(metrics.series.items()):
        observed = [p for p in series.points if p.value is not None]
        if observed:
            latest[name] = SeriesValue(series.unit, float(observed[-1].value))
    return latest
