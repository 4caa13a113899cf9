"""Modal's statistics and metrics over a time range, for the loopback API, computed from the recorder's state.

Each handler mirrors one client call of modal 1.6.4 and answers in the shape that call parses:

- ``FunctionGetTimeRangeStats``: ``Function.stats()`` (modal/_functions.py), parsed by
  ``FunctionStats._from_proto`` (modal/types.py); percentile keys as the client's CLI lists
  them (modal/cli/function.py ``_INPUT_METRIC_ORDER``).
- ``ServerGetTimeRangeStats``: ``Server.stats()`` (modal/_server.py), parsed by
  ``ServerStats._from_proto``; inference keys and scalars as modal/cli/server.py reads them
  (``time_to_first_token``, ``inter_token_latency``, ``input_tokens_per_second``, ...).
- ``FunctionGetMetrics`` / ``ServerGetMetrics``: ``.metrics.export()`` (modal/_metrics.py),
  parsed by ``_object_metrics``: series with a unit and UTC-aligned bucket points, the
  partial bucket at ``until`` excluded, absent points (the future) without a value. The
  series names here are the recorder's own (the client does not list Modal's); what the
  proto fixes is the shape: a ``unit`` ("seconds, calls, containers, or requests",
  api_pb2.pyi ``FunctionMetricSeries``) and the aggregation as the name's last ``_`` part.
- ``AppGetTimeRangeStats``: ``App.stats()`` (modal/app.py), parsed by ``AppStats._from_proto``;
  ``AppGetOrCreate`` answers ``App.lookup(name)`` (modal/app.py), the client's one public way
  to an App object of a deployed app, as a lookup only (no ``create_if_missing``).

Strict as Modal: an unknown function or app id is NOT_FOUND, a Server call on a plain
Function is NOT_FOUND, an empty or over-long window and an unknown metrics group are
INVALID_ARGUMENT. Containers come from the recorder (``start_container`` /
``start_container_at``), inputs and engine figures from what a test declares (``UsageBook``).
"""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf.message import Message
from grpclib import GRPCError, Status
from modal_proto import api_pb2

from .modal_api_state import AppRecord, ContainerRecord, ModalState
from .modal_api_usage import (
    UsageBook,
    app_by_id,
    containers_of,
    deployed_app_of,
    percentiles,
    seconds_within,
    timestamp_of,
    window,
)

STATS_MAX_SPAN_S = 7 * 86400  # "The maximum time range is 7 days" (Function.stats / Server.stats docstrings)
METRICS_MAX_SPAN_S = 31 * 86400  # modal/_metrics.py `_metrics_request`
METRICS_MAX_POINTS = 500
BUCKET_WIDTHS_S = (60, 300, 600, 1800, 3600, 21600, 86400)
FUNCTION_GROUPS = ("containers", "calls")
SERVER_GROUPS = ("containers", "requests")


class TimeRangeHandlers:
    """Mixin: time-range stats and metrics of Functions, Servers and apps."""

    state: ModalState

    def usage_book(self) -> UsageBook:  # supplied by StatsHandlers
        raise NotImplementedError

    # ---- stats ---------------------------------------------------------------------------
    # Mirrors Function.stats() (modal/_functions.py); parsed by FunctionStats._from_proto (modal/types.py).
    def rpc_FunctionGetTimeRangeStats(
        self, req: api_pb2.FunctionGetTimeRangeStatsRequest, meta: Mapping[str, str]
    ) -> Message:
        app = deployed_app_of(self.state, req.function_id)
        since, until = _stats_window(req)
        active, started = self._containers_in(app, since, until, req.container_id)
        outcomes, executions = self._inputs_in(app, since, until)
        resp = api_pb2.FunctionGetTimeRangeStatsResponse(
            since=req.since,
            until=req.until,
            input_success_count=outcomes["success"],
            input_failure_count=outcomes["failure"],
            input_timeout_count=outcomes["timeout"],
            container_started_count=started,
            container_total_count=active,
            variant_count=1,
        )
        if executions:
            resp.input_percentile_stats["Execution time (s)"].CopyFrom(percentiles(executions, "seconds"))
        return resp

    # Mirrors Server.stats() (modal/_server.py); parsed by ServerStats._from_proto (modal/types.py).
    def rpc_ServerGetTimeRangeStats(
        self, req: api_pb2.ServerGetTimeRangeStatsRequest, meta: Mapping[str, str]
    ) -> Message:
        app = self._server_app(req.function_id)
        since, until = _stats_window(req)
        active, started = self._containers_in(app, since, until, req.container_id)
        outcomes, executions = self._inputs_in(app, since, until)
        total = sum(outcomes.values())
        resp = api_pb2.ServerGetTimeRangeStatsResponse(
            since=req.since,
            until=req.until,
            request_count=total,
            request_rate_per_second=total / (until - since),
            container_started_count=started,
            container_total_count=active,
        )
        for status_code, outcome in ((200, "success"), (500, "failure"), (504, "timeout")):
            if outcomes[outcome]:
                resp.request_count_by_status_code.add(status_code=status_code, count=outcomes[outcome])
        if executions:
            resp.request_percentile_stats["End-to-end latency (s)"].CopyFrom(percentiles(executions, "seconds"))
        figures = self.usage_book().inference.get(app.app_id)
        inference = resp.inference
        inference.engine = api_pb2.LLM_ENGINE_VLLM
        if figures is None:
            inference.status = api_pb2.SERVER_INFERENCE_STATS_STATUS_NO_DATA
            return resp
        inference.status = api_pb2.SERVER_INFERENCE_STATS_STATUS_AVAILABLE
        inference.percentile_stats["time_to_first_token"].CopyFrom(percentiles(list(figures.ttft_s), "seconds"))
        inference.percentile_stats["inter_token_latency"].CopyFrom(percentiles(list(figures.inter_token_s), "seconds"))
        inference.scalar_stats["input_tokens_per_second"] = figures.input_tokens_per_second
        inference.scalar_stats["output_tokens_per_second"] = figures.output_tokens_per_second
        return resp

    # Mirrors App.stats() (modal/app.py); parsed by AppStats._from_proto (modal/types.py).
    def rpc_AppGetTimeRangeStats(self, req: api_pb2.AppGetTimeRangeStatsRequest, meta: Mapping[str, str]) -> Message:
        app = app_by_id(self.state, req.app_id)
        since, until = _stats_window(req)
        if since < self.usage_book().clock() - 30 * 86400:
            raise GRPCError(Status.INVALID_ARGUMENT, "App stats windows must start in the past 30 days.")
        active, _started = self._containers_in(app, since, until, "")
        outcomes, _executions = self._inputs_in(app, since, until)
        failed = outcomes["failure"] + outcomes["timeout"]
        resp = api_pb2.AppGetTimeRangeStatsResponse(
            since=req.since, until=req.until, lifecycle=app.lifecycle(), deployment_count=len(app.deployments)
        )
        live = app.deployments[-1] if app.deployments else None
        for tag, function_id in live.function_ids if live else ():
            data = self.state.function_data.get(function_id)
            serving = data is not None and bool(data.ranked_functions)
            containers = api_pb2.AppContainerCounts(container_active_count=active if serving else 0)
            if data is not None and data.is_server:
                row = resp.servers.by_name[tag]
                row.object_id = function_id
                row.counts.containers.CopyFrom(containers)
                row.counts.requests.CopyFrom(
                    api_pb2.AppRequestCounts(total=sum(outcomes.values()), ok=outcomes["success"], failed=failed)
                    if serving
                    else api_pb2.AppRequestCounts()
                )
            else:
                row_f = resp.functions.by_name[tag]
                row_f.object_id = function_id
                row_f.counts.containers.CopyFrom(containers)
                row_f.counts.calls.CopyFrom(
                    api_pb2.AppCallCounts(total=sum(outcomes.values()), succeeded=outcomes["success"], failed=failed)
                    if serving
                    else api_pb2.AppCallCounts()
                )
        for group in (resp.functions, resp.servers):
            for stats in group.by_name.values():
                _add_counts(group.total, stats.counts)
        return resp

    # Mirrors App.lookup(name) (modal/app.py, AppGetOrCreateRequest); AppInfo._from_proto reads handle_metadata.
    def rpc_AppGetOrCreate(self, req: api_pb2.AppGetOrCreateRequest, meta: Mapping[str, str]) -> Message:
        if req.object_creation_type == api_pb2.OBJECT_CREATION_TYPE_CREATE_IF_MISSING:
            raise GRPCError(Status.UNIMPLEMENTED, "recorder: App.lookup(create_if_missing=True) is not modelled")
        app = self.state.app_by_name(req.app_name, req.environment_name)
        if app is None or app.state != api_pb2.APP_STATE_DEPLOYED:
            env = self.state.env_name(req.environment_name)
            raise GRPCError(Status.NOT_FOUND, f"App '{req.app_name}' not found in environment '{env}'")
        resp = api_pb2.AppGetOrCreateResponse(app_id=app.app_id)
        resp.handle_metadata.description = app.name
        resp.handle_metadata.lifecycle.CopyFrom(app.lifecycle())
        for tag, function_id in app.deployments[-1].function_ids if app.deployments else ():
            data = self.state.function_data.get(function_id)
            (resp.handle_metadata.servers if data is not None and data.is_server else resp.handle_metadata.functions)[
                tag
            ] = function_id
        return resp

    # ---- metrics -------------------------------------------------------------------------
    # Mirrors Function.metrics.export() (modal/_metrics.py _MetricsManager._export, rollup); parsed by _object_metrics.
    def rpc_FunctionGetMetrics(self, req: api_pb2.FunctionGetMetricsRequest, meta: Mapping[str, str]) -> Message:
        app = deployed_app_of(self.state, req.function_id)
        return self._metrics(app, req, FUNCTION_GROUPS, api_pb2.FunctionGetMetricsResponse())

    # Mirrors Server.metrics.export() (modal/_metrics.py, ServerGetMetricsRequest); parsed by _object_metrics.
    def rpc_ServerGetMetrics(self, req: api_pb2.ServerGetMetricsRequest, meta: Mapping[str, str]) -> Message:
        app = self._server_app(req.function_id)
        return self._metrics(app, req, SERVER_GROUPS, api_pb2.ServerGetMetricsResponse())

    def _metrics(
        self,
        app: AppRecord,
        req: api_pb2.FunctionGetMetricsRequest | api_pb2.ServerGetMetricsRequest,
        known: tuple[str, ...],
        resp: api_pb2.FunctionGetMetricsResponse | api_pb2.ServerGetMetricsResponse,
    ) -> Message:
        since, until = window(req.since, req.until)
        if until - since > METRICS_MAX_SPAN_S:
            raise GRPCError(Status.INVALID_ARGUMENT, "Metrics time range cannot exceed 31 days.")
        unknown = sorted(set(req.groups) - set(known))
        if unknown:
            raise GRPCError(Status.INVALID_ARGUMENT, f"Unknown metrics groups {unknown}; known: {list(known)}")
        bucket = req.bucket_secs if req.HasField("bucket_secs") else _auto_bucket(since, until)
        if bucket < 60:
            raise GRPCError(Status.INVALID_ARGUMENT, "`bucket_size` must be at least one minute.")
        start = int(since) // bucket * bucket
        stop = int(until) // bucket * bucket  # the partial bucket at `until` is excluded
        if (stop - start) // bucket > METRICS_MAX_POINTS:
            raise GRPCError(Status.INVALID_ARGUMENT, "Metrics are limited to 500 points per series.")
        resp.since.CopyFrom(timestamp_of(start))
        resp.until.CopyFrom(timestamp_of(stop))
        resp.bucket_secs = bucket
        groups = list(req.groups) or list(known)
        now = self.usage_book().clock()
        buckets = [float(t) for t in range(start, stop, bucket)]
        containers = containers_of(self.state, app.app_id)
        for group in known:
            if group not in groups:
                continue
            if group == "containers":
                mean = [sum(seconds_within(c, t, t + bucket, now) for c in containers) / bucket for t in buckets]
                peak = [float(sum(1 for c in containers if seconds_within(c, t, t + bucket, now) > 0)) for t in buckets]
                _series(
                    resp,
                    "containers_mean",
                    "containers",
                    "Time-weighted mean of running containers.",
                    buckets,
                    mean,
                    now,
                )
                _series(resp, "containers_max", "containers", "Containers running at some point.", buckets, peak, now)
                continue
            unit = "calls" if group == "calls" else "requests"
            ok = [float(self._inputs_in(app, t, t + bucket)[0]["success"]) for t in buckets]
            bad = [
                float(sum(self._inputs_in(app, t, t + bucket)[0].values())) - o
                for t, o in zip(buckets, ok, strict=True)
            ]
            _series(resp, f"successful_{unit}_count", unit, f"Successful {unit} in the bucket.", buckets, ok, now)
            _series(resp, f"failed_{unit}_count", unit, f"Failed or timed-out {unit} in the bucket.", buckets, bad, now)
        return resp

    # ---- shared ----------------------------------------------------------------------------
    def _server_app(self, function_id: str) -> AppRecord:
        app = deployed_app_of(self.state, function_id)
        data = self.state.function_data.get(function_id)
        if data is None or not data.is_server:
            raise GRPCError(Status.NOT_FOUND, f"Server '{function_id}' not found")
        return app

    def _containers_in(self, app: AppRecord, since: float, until: float, container_id: str) -> tuple[int, int]:
        """Containers active in [since, until) and those started in it (one container when ``container_id``)."""
        containers: list[ContainerRecord] = containers_of(self.state, app.app_id)
        if container_id:
            containers = [c for c in containers if c.task_id == container_id]
            if not containers:
                raise GRPCError(Status.NOT_FOUND, f"Container '{container_id}' not found")
        now = self.usage_book().clock()
        active = sum(1 for c in containers if seconds_within(c, since, until, now) > 0)
        started = sum(1 for c in containers if since <= c.started_at < until)
        return active, started

    def _inputs_in(self, app: AppRecord, since: float, until: float) -> tuple[dict[str, int], list[float]]:
        """Inputs finished in [since, until) by outcome, and each one's execution time."""
        outcomes = {"success": 0, "failure": 0, "timeout": 0}
        executions: list[float] = []
        for event in self.usage_book().inputs:
            if event.app_id == app.app_id and since <= event.at < until:
                outcomes[event.outcome] += event.count
                executions.extend([event.execution_s] * event.count)
        return outcomes, executions


def _stats_window(
    req: api_pb2.FunctionGetTimeRangeStatsRequest
    | api_pb2.ServerGetTimeRangeStatsRequest
    | api_pb2.AppGetTimeRangeStatsRequest,
) -> tuple[float, float]:
    since, until = window(req.since, req.until)
    if until - since > STATS_MAX_SPAN_S:
        raise GRPCError(Status.INVALID_ARGUMENT, "The maximum time range is 7 days.")
    return since, until


def _auto_bucket(since: float, until: float) -> int:
    """A supported width giving about 100 buckets (the export docstring: "approximately 100 buckets")."""
    return next((w for w in BUCKET_WIDTHS_S if (until - since) / w <= 100), BUCKET_WIDTHS_S[-1])


def _series(
    resp: api_pb2.FunctionGetMetricsResponse | api_pb2.ServerGetMetricsResponse,
    name: str,
    unit: str,
    description: str,
    buckets: list[float],
    values: list[float],
    now: float,
) -> None:
    """One series; buckets that start after ``now`` have no observation yet (a gap, as on Modal)."""
    series = resp.series.add(name=name, unit=unit, description=description)
    for start, value in zip(buckets, values, strict=True):
        point = series.points.add(timestamp=timestamp_of(start))
        if start <= now:
            point.value = value


def _add_counts(
    total: api_pb2.AppFunctionCounts | api_pb2.AppServerCounts, row: api_pb2.AppFunctionCounts | api_pb2.AppServerCounts
) -> None:
    total.containers.container_active_count += row.containers.container_active_count
    total.containers.container_errors += row.containers.container_errors
    if isinstance(total, api_pb2.AppFunctionCounts) and isinstance(row, api_pb2.AppFunctionCounts):
        total.calls.total += row.calls.total
        total.calls.succeeded += row.calls.succeeded
        total.calls.failed += row.calls.failed
    elif isinstance(total, api_pb2.AppServerCounts) and isinstance(row, api_pb2.AppServerCounts):
        total.requests.total += row.requests.total
        total.requests.ok += row.requests.ok
        total.requests.failed += row.requests.failed
