"""The gateway's ``/metrics``: the fleet's Prometheus series behind an admin key, on both targets.

What it serves (prometheus-client's exposition, never hand-written text):
- the gateway's own counters per model -- requests, errors, refused by a quota, prompt and
  completion tokens, GPU-seconds and their cost -- counted as the usage ledger counts them
  (``CountingLedger`` sees every ``count`` on its way to the ledger), since this process
  started; label ``gateway`` tells gateway processes (Modal containers) apart, so a sum
  over them is right whichever container a scrape lands on;
- per-replica engine series (``observe/exposition.py``'s families, label ``replica``), from
  one of two sources:
  * **in-band replica reports** (the default; what Modal uses): every model edge attaches
    its engine's figures to each answer it relays in the ``x-fleet-replica`` header
    (``runtime/edge_report.py`` says why in-band: blocked egress, and a scrape of a public
    URL would wake GPUs). ``ReplicaReportMiddleware`` takes the header off before the
    client sees it and keeps the last one per replica (raw, stamped with the receipt time;
    parsed only when /metrics is read). A replica whose last report is older than the TTL
    leaves no series -- one that died, scaled down, or simply had no traffic (its figures
    were zero then). Each gateway process sees the replicas it relayed to: with several
    gateway containers, a scrape shows the ones that container talked to within the TTL;
  * **a direct source** (the local target): each engine's /metrics on this machine
    (``observe/local_source.py``), which sees idle replicas too and wakes nothing (local
    engines do not scale to zero). Reports are then stripped and not kept.
  ``gateway/server.py``'s ``metrics_for`` picks the source from the fleet's target.

Who may read it: an admin key (``fleet keys create NAME --admin``), checked by the gateway's
own ``Authenticator`` (so its revocation TTL and constant-time check hold); a client key
gets 403, no key 401 (``observe/gateway_route.py``). No $/h samples: a replica that does
not report still costs money, so $/h comes from ``fleet top`` (Modal's container counts).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelfleet.gateway.auth import Authenticator
from modelfleet.gateway.ledger import Counts, UsageLedger, UsageRow
from modelfleet.observe.exposition import DEFAULT_TTL, FleetCollector, ReplicaFigures, ReplicaStore
from modelfleet.observe.gateway_route import metrics_route
from modelfleet.observe.samples import EngineSample
from modelfleet.runtime.edge_report import REPORT_HEADER, TASK_ID_ENV, parse_report

_HEADER = REPORT_HEADER.encode()
# More distinct replicas than any fleet runs at once: a bound on memory, not a limit in use.
MAX_REPLICAS = 4096
GATEWAY_LABELS = ["model", "target", "environment", "gateway"]
# Counts field -> (family name, help); prometheus-client adds ``_total`` to counters.
_COUNTERS = {
    "requests": ("fleet_gateway_requests", "Requests the gateway relayed to a model."),
    "errors": ("fleet_gateway_errors", "Relayed requests that failed (model error, broken stream, no answer)."),
    "rejected": ("fleet_gateway_rejected", "Requests refused by a quota (never sent to a model)."),
    "prompt_tokens": ("fleet_gateway_prompt_tokens", "Prompt tokens of relayed requests (the model's usage)."),
    "completion_tokens": ("fleet_gateway_completion_tokens", "Completion tokens of relayed requests."),
    "gpu_seconds": ("fleet_gateway_gpu_seconds", "GPU-seconds attributed to relayed requests."),
    "cost_usd": ("fleet_gateway_cost_dollars", "What those GPU-seconds cost at the fleet's prices."),
}


def gateway_id() -> str:
    """This gateway process: the Modal task id in a Modal container, else host and process id."""
    return os.environ.get(TASK_ID_ENV) or f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class ReportedReplica:
    """A replica as its last report showed it, stamped with when the gateway received it."""

    model: str
    replica: str
    sample: EngineSample | None
    at: float


class ReplicaReports:
    """The last raw report of each replica, as received; parsed only when /metrics is read.

    ``ingest`` runs once per relayed answer, so it does the least: split off the replica
    id and store the bytes with the time. The event loop writes, the exposition thread
    reads: a lock keeps the two apart.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._latest: dict[bytes, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def ingest(self, raw: bytes) -> None:
        """Keep ``raw`` as its replica's latest report (a report without an id is dropped)."""
        parts = raw.split(b";", 2)
        if len(parts) < 3 or not parts[1].startswith(b"id="):
            return
        with self._lock:
            if len(self._latest) >= MAX_REPLICAS and parts[1] not in self._latest:
                return
            self._latest[parts[1]] = (raw, self.clock())

    def take(self, ttl: float) -> list[ReportedReplica]:
        """The replicas reported within ``ttl`` seconds, parsed; older and malformed reports are dropped."""
        now = self.clock()
        with self._lock:
            self._latest = {key: kept for key, kept in self._latest.items() if kept[1] >= now - ttl}
            kept = dict(self._latest)
        replicas, malformed = [], []
        for key, (raw, at) in kept.items():
            report = parse_report(raw.decode("latin-1"))
            if report is None:
                malformed.append(key)
            else:
                replicas.append(ReportedReplica(report.model, report.replica, report.sample, at))
        with self._lock:
            for key in malformed:  # unless a good report replaced it meanwhile
                if self._latest.get(key) == kept[key]:
                    del self._latest[key]
        return replicas


class ReplicaReportMiddleware:
    """Takes ``x-fleet-replica`` off every answer before the client sees it, and hands it to ``reports``.

    Pure ASGI, so no response is buffered; the header is looked for in the response start
    only (the other messages of a stream pass through one ``if``).
    """

    def __init__(self, app: ASGIApp, reports: ReplicaReports | None) -> None:
        self.app = app
        self.reports = reports

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reports = self.reports

        async def send_without_report(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers") or []
                if any(name.lower() == _HEADER for name, _ in headers):
                    kept = []
                    for name, value in headers:
                        if name.lower() != _HEADER:
                            kept.append((name, value))
                        elif reports is not None:
                            reports.ingest(bytes(value))
                    message = {**message, "headers": kept}
            await send(message)

        await self.app(scope, receive, send_without_report)


class CountingLedger:
    """A ``UsageLedger`` that also keeps per-model totals since this process started (the counters' source)."""

    def __init__(self, inner: UsageLedger) -> None:
        self.inner = inner
        self.totals: dict[str, Counts] = {}
        self._lock = threading.Lock()

    def count(self, day: date, key: str, model: str, counts: Counts) -> None:
        """Add to the model's totals, then to the ledger."""
        with self._lock:
            self.totals.setdefault(model, Counts()).add(counts)
        self.inner.count(day, key, model, counts)

    def flush(self, today: date) -> None:
        """The ledger's flush."""
        self.inner.flush(today)

    def tokens_on(self, day: date, key: str) -> int:
        """The ledger's answer."""
        return self.inner.tokens_on(day, key)

    def cost_in_month(self, day: date, key: str) -> float:
        """The ledger's answer."""
        return self.inner.cost_in_month(day, key)

    def rows(self, *, since: date | None = None, key: str | None = None) -> list[UsageRow]:
        """The ledger's rows."""
        return self.inner.rows(since=since, key=key)

    def snapshot(self) -> dict[str, Counts]:
        """A copy of the totals (read from the exposition thread)."""
        with self._lock:
            return {model: Counts(**vars(counts)) for model, counts in self.totals.items()}


@dataclass(eq=False)  # identity-hashed: the registry keys its collectors by the object
class GatewayCountsCollector:
    """The gateway's own counters per model as Prometheus families."""

    ledger: CountingLedger
    target: str
    environment: str
    gateway: str

    def collect(self) -> Iterator[Metric]:
        """One counter family per ``Counts`` field, a sample per model."""
        totals = self.ledger.snapshot()
        for name, (family_name, help_text) in _COUNTERS.items():
            family = CounterMetricFamily(family_name, help_text, labels=GATEWAY_LABELS)
            for model, counts in sorted(totals.items()):
                family.add_metric([model, self.target, self.environment, self.gateway], getattr(counts, name))
            yield family


@dataclass
class GatewayMetrics:
    """What ``build_gateway`` mounts at /metrics: its counters and the replicas, for ``target``/``environment``.

    ``replicas``: a direct source of replica figures (the local target's engine scrapes);
    None: the in-band reports relayed answers carry. ``ttl``: how long a replica's series
    outlive its last report or scrape. ``clock``: wall time of reports and exposition.
    """

    target: str = "local"
    environment: str = ""
    replicas: Callable[[], Sequence[ReplicaFigures]] | None = None
    ttl: float = DEFAULT_TTL
    gateway: str = field(default_factory=gateway_id)
    clock: Callable[[], float] = time.time
    reports: ReplicaReports = field(init=False)
    counting: CountingLedger | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.reports = ReplicaReports(self.clock)

    def tee(self, ledger: UsageLedger) -> CountingLedger:
        """``ledger`` with the counters' tee in front (give the gateway this one)."""
        self.counting = CountingLedger(ledger)
        return self.counting

    def registry(self) -> CollectorRegistry:
        """A registry of its own: the replica families and (once ``tee`` was called) the gateway's counters."""
        registry = CollectorRegistry(auto_describe=False)
        source = self.replicas if self.replicas is not None else lambda: self.reports.take(self.ttl)
        store = ReplicaStore(ttl=self.ttl)
        registry.register(FleetCollector(source, self.target, self.environment, {}, {}, store, self.clock))
        if self.counting is not None:
            registry.register(GatewayCountsCollector(self.counting, self.target, self.environment, self.gateway))
        return registry

    def route(self, auth: Authenticator) -> Route:
        """GET /metrics for admin keys (checked by the gateway's own ``auth``)."""
        return metrics_route(self.registry(), auth)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """The report-stripping middleware around ``app`` (reports kept only when they are the source)."""
        return ReplicaReportMiddleware(app, self.reports if self.replicas is None else None)
