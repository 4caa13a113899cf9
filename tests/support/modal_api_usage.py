"""What the loopback API counts about usage: a clock, inputs, engine figures, billing rates and refusals.

Why: Modal's time-range stats, metrics and billing are answers about the past, computed by
Modal from what ran. The recorder has what ran -- deployed apps, the containers a test
started (``started_at`` / ``finished_at``) -- and this book adds what it cannot see: the
inputs a test declares, the inference-engine figures a Modal Server reports, the time
("now", a clock a test may set to make windows exact), Modal's per-second rates, and
whether billing answers at all (a workspace without billing access is refused).
The handlers in ``modal_api_time_range`` and ``modal_api_billing`` compute every answer
from this book and ``ModalState``: nothing is a canned reply.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf.timestamp_pb2 import Timestamp
from grpclib import GRPCError, Status
from modal_proto import api_pb2

from .modal_api_state import AppRecord, ContainerRecord, ModalState

# Modal's list prices per second (https://modal.com/pricing, 2026-11; fleet.toml's prices.per_hour
# come from the same page x 3600). Modal bills CPU and memory besides the GPU; the fleet's price
# table counts GPUs only, so a bill is higher than the price table by about these two lines.
GPU_RATES_PER_SECOND = {
    "T4": 0.000164,
    "L4": 0.000222,
    "A10": 0.000306,
    "L40S": 0.000542,
    "A100-40GB": 0.000583,
    "A100-80GB": 0.000694,
    "H100": 0.001097,
    "H200": 0.001261,
    "B200": 0.001736,
}
CPU_CORE_RATE_PER_SECOND = 0.0000131
MEMORY_GIB_RATE_PER_SECOND = 0.00000222
# Without cpu=/memory= a container reserves 0.125 cores and 128 MiB (notes/modal.md, "Resources").
DEFAULT_MILLI_CPU = 125
DEFAULT_MEMORY_MB = 128

PERCENTILES_BASIS_POINTS = (5000, 9000, 9500, 9900)


@dataclass(frozen=True)
class InputEvent:
    """Inputs of one app that finished at ``at`` with one outcome (``success``, ``failure``, ``timeout``)."""

    app_id: str
    at: float
    outcome: str
    count: int
    execution_s: float


@dataclass(frozen=True)
class InferenceFigures:
    """What a Modal Server's inference engine reports to Modal's stats API (modal/types.py ``ServerStats``)."""

    ttft_s: tuple[float, ...]
    inter_token_s: tuple[float, ...]
    input_tokens_per_second: float
    output_tokens_per_second: float


@dataclass
class UsageBook:
    """The recorder's notes about usage, beside ``ModalState``."""

    clock: Callable[[], float] = time.time
    inputs: list[InputEvent] = field(default_factory=list)
    inference: dict[str, InferenceFigures] = field(default_factory=dict)
    billing_refusal: tuple[Status, str] | None = None
    gpu_rates: dict[str, float] = field(default_factory=lambda: dict(GPU_RATES_PER_SECOND))


def deployed_app_of(state: ModalState, function_id: str) -> AppRecord:
    """The deployed app that serves ``function_id``; NOT_FOUND otherwise, as Modal answers an unknown id."""
    for app in state.apps.values():
        if app.state == api_pb2.APP_STATE_DEPLOYED and any(function_id in d.functions for d in app.deployments):
            return app
    raise GRPCError(Status.NOT_FOUND, f"Function '{function_id}' not found")


def app_by_id(state: ModalState, app_id: str) -> AppRecord:
    """An app by id; NOT_FOUND for an id Modal never issued (the other recorder lookups answer the same)."""
    app = state.apps.get(app_id)
    if app is None:
        raise GRPCError(Status.NOT_FOUND, f"App '{app_id}' not found")
    return app


def containers_of(state: ModalState, app_id: str) -> list[ContainerRecord]:
    """Every container record of the app, running or stopped."""
    return [c for c in state.containers.values() if c.app_id == app_id]


def seconds_within(container: ContainerRecord, since: float, until: float, now: float) -> float:
    """How long the container ran inside [since, until) (a running one runs until ``now``)."""
    end = container.finished_at or now
    return max(0.0, min(end, until) - max(container.started_at, since))


def served_definition(app: AppRecord) -> api_pb2.Function | None:
    """The live version's serving function definition (its primary GPU option): what Modal bills for."""
    if not app.deployments:
        return None
    for _handle, data in app.deployments[-1].functions.values():
        if data.ranked_functions:
            return sorted(data.ranked_functions, key=lambda r: r.rank)[0].function
    return None


def window(since_ts: Timestamp, until_ts: Timestamp) -> tuple[float, float]:
    """A request's [since, until) as seconds; INVALID_ARGUMENT when empty (the client checks too)."""
    since = seconds_of(since_ts)
    until = seconds_of(until_ts)
    if since >= until:
        raise GRPCError(Status.INVALID_ARGUMENT, "`since` must be before `until`.")
    return since, until


def seconds_of(timestamp: Timestamp) -> float:
    """A protobuf Timestamp as Unix seconds."""
    return float(timestamp.seconds) + float(timestamp.nanos) / 1e9


def timestamp_of(seconds: float) -> Timestamp:
    """Unix seconds as a protobuf Timestamp."""
    stamp = Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp


def percentiles(values: list[float], unit: str) -> api_pb2.StatsPercentileDistribution:
    """Nearest-rank percentiles of ``values`` in Modal's shape (basis points, modal/types.py ``StatsPercentile``)."""
    distribution = api_pb2.StatsPercentileDistribution(unit=unit)
    ordered = sorted(values)
    for basis_points in PERCENTILES_BASIS_POINTS:
        rank = max(1, math.ceil(basis_points / 10000 * len(ordered)))
        distribution.percentiles.add(percentile_basis_points=basis_points, value=ordered[rank - 1])
    return distribution


def app_costs(state: ModalState, book: UsageBook, app: AppRecord, since: float, until: float) -> dict[str, float]:
    """What Modal would bill the app for [since, until), by resource: the GPUs, CPU and memory its containers held.

    Per container-second at the live version's primary GPU option and its reserved CPU and
    memory (Modal bills by reservation, at least 0.125 cores and 128 MiB). Resource names are
    the recorder's own: Modal says its breakdown keys "are subject to change"
    (modal/_environments.py ``report``), and the fleet never parses them.
    """
    definition = served_definition(app)
    if definition is None:
        return {}
    now = book.clock()
    seconds = sum(seconds_within(c, since, until, now) for c in containers_of(state, app.app_id))
    if seconds <= 0:
        return {}
    resources = definition.resources
    gpu = resources.gpu_config
    cores = (resources.milli_cpu or DEFAULT_MILLI_CPU) / 1000
    gib = (resources.memory_mb or DEFAULT_MEMORY_MB) / 1024
    costs = {
        "CPU": seconds * cores * CPU_CORE_RATE_PER_SECOND,
        "Memory": seconds * gib * MEMORY_GIB_RATE_PER_SECOND,
    }
    if gpu.count:
        if gpu.gpu_type not in book.gpu_rates:
            raise GRPCError(Status.INTERNAL, f"recorder: no billing rate for GPU {gpu.gpu_type!r}")
        costs[f"GPU ({gpu.gpu_type})"] = seconds * gpu.count * book.gpu_rates[gpu.gpu_type]
    return costs
