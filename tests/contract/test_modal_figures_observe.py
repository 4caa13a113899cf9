"""Modal's own figures in the fleet view (real ``fleet`` CLI and modal client, loopback API): stats, metrics, app stats.

A classic web endpoint gives inputs, containers and latency from ``Function.stats`` and its
metrics series; a Modal Server adds what its inference engine reports to Modal (TTFT,
inter-token latency, tokens/s), which fills ``fleet top``'s engine columns without any scrape.
The loopback answers are strict like Modal's: unknown ids are NOT_FOUND.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from grpclib import GRPCError, Status
from modal_proto import api_pb2

from tests.contract.test_modal_serving_primitive import _as_server, _fleet_root
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import create_workspace, drive, run_fleet
from tests.support.modal_api_usage import InferenceFigures, timestamp_of

MODEL = "smollm2-135m"
APP = f"fleet-{MODEL}"
HOUR = 3600.0


@pytest.fixture
def api() -> Iterator[ModalApiRecorder]:
    with ModalApiRecorder() as recorder:
        create_workspace(recorder)
        yield recorder


def _top_json(api: ModalApiRecorder, root: Path | None = None) -> dict[str, Any]:
    done = run_fleet(api, "top", "--format", "json", "--no-record", **({} if root is None else {"root": root}))
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def test_a_classic_endpoints_last_hour_comes_from_modals_stats_and_metrics(api: ModalApiRecorder) -> None:
    drive(api, "deploy", "commit-1", MODEL)
    now = time.time()
    api.start_container_at(APP, now - 2 * HOUR, now - HOUR / 2)  # stopped half an hour ago
    api.start_container_at(APP, now - 600)
    api.record_inputs(APP, 9, now - 300, execution_s=0.8)
    api.record_inputs(APP, 1, now - 200, outcome="timeout", execution_s=150.0)
    calls_before = len(api.calls)

    document = _top_json(api)

    figures = document["modal"]["figures"][MODEL]
    assert (figures["inputs_succeeded"], figures["inputs_failed"]) == (9, 1)
    assert (figures["containers_active"], figures["containers_started"]) == (2, 1)
    assert figures["app_containers_active"] == 2
    assert (figures["latency_p50"], figures["latency_p95"]) == (0.8, 150.0)
    assert figures["series"]["containers_mean"] == {"unit": "containers", "value": 1.0}
    assert figures["until"] - figures["since"] == HOUR
    (view,) = document["models"]
    assert view["replicas_running"] == 1 and view["ttft_p50"] is None  # a classic endpoint reports no engine figures
    during = [name for name, _ in api.calls[calls_before:]]
    assert {"FunctionGetTimeRangeStats", "FunctionGetMetrics", "AppGetTimeRangeStats"} <= set(during)
    assert not any(name.startswith("ServerGet") for name in during)
    assert api.unimplemented == []


def test_a_modal_servers_engine_figures_fill_the_latency_and_token_columns(
    api: ModalApiRecorder, tmp_path: Path
) -> None:
    root = _fleet_root(tmp_path, models=[MODEL])
    toml = root / "models" / MODEL / "model.toml"
    toml.write_text(_as_server(toml.read_text()))
    create_workspace(api, root)
    drive(api, "deploy", "commit-1", MODEL, root=root)
    api.start_container_at(APP, time.time() - HOUR)
    api.record_inputs(APP, 40, time.time() - 60, execution_s=2.5)
    figures = InferenceFigures(
        ttft_s=(0.05, 0.06, 0.07, 0.30), inter_token_s=(0.01, 0.012), input_tokens_per_second=900.0,
        output_tokens_per_second=250.0,
    )  # fmt: skip
    api.declare_inference(APP, figures)
    calls_before = len(api.calls)

    document = _top_json(api, root)

    (view,) = document["models"]
    assert (view["ttft_p50"], view["ttft_p95"]) == (0.06, 0.30)
    assert (view["tpot_p50"], view["tpot_p95"]) == (0.01, 0.012)
    assert (view["tokens_in_per_s"], view["tokens_out_per_s"]) == (900.0, 250.0)
    per_hour = view["dollars_per_hour"]
    assert view["dollars_per_million_out"] == pytest.approx(per_hour / (250.0 * 3600) * 1e6)
    hour = document["modal"]["figures"][MODEL]
    assert (hour["inputs_succeeded"], hour["latency_p50"]) == (40, 2.5)
    assert hour["series"]["successful_requests_count"]["unit"] == "requests"
    during = {name for name, _ in api.calls[calls_before:]}
    assert {"ServerGetTimeRangeStats", "ServerGetMetrics", "AppGetTimeRangeStats"} <= during
    assert api.unimplemented == []


def _window_request(kind: type[Any], **fields: Any) -> Any:
    now = time.time()
    return kind(since=timestamp_of(now - HOUR), until=timestamp_of(now), **fields)


def test_the_loopback_answers_unknown_ids_and_wrong_kinds_as_modal_does(api: ModalApiRecorder) -> None:
    drive(api, "deploy", "commit-1", MODEL)
    unknown = "fu-" + "x" * 22
    classic = next(iter(api.apps()[APP].deployments[-1].functions))
    refusals: list[tuple[Any, Any, Status]] = [
        (api.rpc_FunctionGetTimeRangeStats, _window_request(api_pb2.FunctionGetTimeRangeStatsRequest, function_id=unknown), Status.NOT_FOUND),
        (api.rpc_FunctionGetMetrics, _window_request(api_pb2.FunctionGetMetricsRequest, function_id=unknown), Status.NOT_FOUND),
        (api.rpc_ServerGetTimeRangeStats, _window_request(api_pb2.ServerGetTimeRangeStatsRequest, function_id=classic), Status.NOT_FOUND),
        (api.rpc_ServerGetMetrics, _window_request(api_pb2.ServerGetMetricsRequest, function_id=classic), Status.NOT_FOUND),
        (api.rpc_AppGetTimeRangeStats, _window_request(api_pb2.AppGetTimeRangeStatsRequest, app_id="ap-" + "x" * 22), Status.NOT_FOUND),
        (api.rpc_EnvironmentBillingSummary, api_pb2.EnvironmentBillingSummaryRequest(environment_id="en-nowhere"), Status.NOT_FOUND),
        (api.rpc_FunctionGetMetrics, _window_request(api_pb2.FunctionGetMetricsRequest, function_id=classic, groups=["gpu-made-up"]), Status.INVALID_ARGUMENT),
        (api.rpc_FunctionGetTimeRangeStats, api_pb2.FunctionGetTimeRangeStatsRequest(function_id=classic, since=timestamp_of(0), until=timestamp_of(8 * 86400)), Status.INVALID_ARGUMENT),
    ]  # fmt: skip
    for handler, request, status in refusals:
        with pytest.raises(GRPCError) as refused:
            handler(request, {})
        assert refused.value.status == status, request
    api.refuse_billing()
    report = api_pb2.WorkspaceBillingReportRequest(resolution="h", environment_ids=["en-main"])
    with pytest.raises(GRPCError) as denied:
        api.rpc_WorkspaceBillingReport(report, {})
    assert denied.value.status == Status.PERMISSION_DENIED
