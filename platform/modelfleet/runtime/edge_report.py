"""In-band replica reports: each model edge attaches its engine's figures to the answers it relays.

Why in-band. The fleet needs per-replica engine figures (requests running and waiting,
KV-cache use, token counters, TTFT and time-per-output-token histograms) on Modal, where a
model's public URL lands on one random replica and a scrape of it every 15 s would keep a
scale-to-zero GPU awake forever -- so nobody scrapes it. A replica cannot push either:
serving containers run with blocked egress (``block_network=True``, issue 19), so it opens
no connection to anything. What a replica *can* do is answer: every response it relays
already goes back through the gateway. So the edge puts a compact report in one response
header (``x-fleet-replica``), and the gateway strips it before the client sees it and
keeps the last report of each replica for a time-to-live (``gateway/fleet_metrics.py``).
On Modal the header reaches the gateway unchanged: a classic ``web_server``'s relay passes
every response header of the port back (modal 1.6.4 ``modal/_runtime/asgi.py``,
``web_server_proxy``: ``"headers": [... for k, v in proxy_response.headers.items()]``), and a
Modal Server forwards the port with no per-request relay (shared/notes/modal.md).

What it cannot see: a replica with no traffic reports nothing -- which is also when its
figures are zero (nothing running, nothing waiting, counters unchanged) -- and after the TTL
the gateway forgets it, as it forgets a replica that died or scaled down. How many
containers run (idle ones included) and what they cost is Modal's own count
(``observe/modal_source.py``), not this.

Cost, by construction (the edge's relay is benchmarked: bench/edge_overhead.py, bench/gpu):
nothing per chunk; per response start one list append of a header encoded in advance, and
one attribute write saying there was traffic. The engine's ``/metrics`` is read on the
loopback (or vLLM's Unix socket) by a background task at most every ``interval`` seconds,
and only while responses are being relayed; only the few families the report carries are
parsed (prometheus-client's parser, as ``observe/samples.py`` does), never on a request's
path. Counts only: no prompt, completion, token or key ever goes into the header.

Header grammar (``v=1``), fields separated by ``;``, each ``name=value``::

    v=1;id=<replica>;model=<served name>;running=<n>;waiting=<n>;kv=<0..1>;prompt=<total>;gen=<total>;
    ttft=<sum>|<le>:<cumulative>,...;tpot=<sum>|<le>:<cumulative>,...

``id`` and ``model`` are percent-encoded; histogram bounds are written as Python floats
(``+Inf`` last). A reader ignores fields it does not know, and refuses (None) a report
that is malformed, over ``MAX_REPORT_CHARS``, or of another version.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote

import anyio

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
    parse_metrics,
)

REPORT_HEADER = "x-fleet-replica"
VERSION = "1"
MAX_REPORT_CHARS = 4096
MAX_NAME_CHARS = 128
# Set in every Modal container to the container's task id (a restored container gets a new
# one: modal/_runtime/task_lifecycle_manager.py); the installed client reads it the same way
# (modal/experimental/flash.py, ``os.environ["MODAL_TASK_ID"]``).
TASK_ID_ENV = "MODAL_TASK_ID"

_GAUGES = {"running": REQUESTS_RUNNING, "waiting": REQUESTS_WAITING, "kv": KV_CACHE_USAGE}
_COUNTERS = {"prompt": PROMPT_TOKENS, "gen": GENERATION_TOKENS}
_HISTOGRAMS = {"ttft": TTFT, "tpot": TIME_PER_OUTPUT_TOKEN}
# Names as they appear in vLLM's exposition: TYPE lines of counters carry ``_total`` with
# prometheus-client 0.2x (``# TYPE vllm:prompt_tokens_total counter``), without it elsewhere.
_FAMILIES = frozenset(
    {
        *_GAUGES.values(),
        *_COUNTERS.values(),
        *(name.removesuffix("_total") for name in _COUNTERS.values()),
        *_HISTOGRAMS.values(),
    }
)
_SAMPLES = frozenset(
    {
        *_GAUGES.values(),
        *_COUNTERS.values(),
        *(f"{name}{suffix}" for name in _HISTOGRAMS.values() for suffix in ("_bucket", "_sum", "_count")),
    }
)
_MODEL_LABEL = re.compile(r'model_name="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class ReplicaReport:
    """One replica's figures as its edge last read them from its engine."""

    replica: str
    model: str
    sample: EngineSample


def local_replica_id() -> str:
    """This replica's id: the Modal task id in a Modal container, else host and process id."""
    task = os.environ.get(TASK_ID_ENV)
    return task if task else f"{socket.gethostname()}-{os.getpid()}"


def engine_report(metrics_text: str, replica: str) -> ReplicaReport | None:
    """The report of an engine's ``/metrics`` text; None when it names no served model (not vLLM's).

    Only the lines of the families the report carries are handed to the parser: the
    whole exposition is ~600 lines (Python process and every vLLM series) and parsing it
    all would cost ~10 ms of the edge's loop at each refresh.
    """
    kept: list[str] = []
    model: str | None = None
    for line in metrics_text.splitlines():
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[2] in _FAMILIES:
                kept.append(line)
            continue
        brace = line.find("{")
        name = line[:brace] if brace >= 0 else line.partition(" ")[0]
        if name in _SAMPLES:
            kept.append(line)
            if model is None:
                found = _MODEL_LABEL.search(line)
                model = found.group(1) if found else None
    if model is None:
        return None
    return ReplicaReport(replica, model, parse_metrics("\n".join(kept) + "\n"))


def format_report(report: ReplicaReport) -> str:
    """The header value of ``report`` (see the grammar in the module docstring)."""
    sample = report.sample
    fields = [f"v={VERSION}", f"id={quote(report.replica, safe='')}", f"model={quote(report.model, safe='')}"]
    fields += [f"{key}={_number(sample.gauge(name))}" for key, name in _GAUGES.items()]
    fields += [f"{key}={_number(sample.counter(name))}" for key, name in _COUNTERS.items()]
    for key, name in _HISTOGRAMS.items():
        histogram = sample.histograms.get(name)
        if histogram is not None:
            buckets = ",".join(
                f"{'+Inf' if math.isinf(b) else repr(b)}:{_number(c)}"
                for b, c in zip(histogram.bounds, histogram.cumulative, strict=True)
            )
            fields.append(f"{key}={_number(histogram.total)}|{buckets}")
    return ";".join(fields)


def parse_report(text: str) -> ReplicaReport | None:
    """The report in a header value, or None when it is malformed, too long or of another version."""
    if len(text) > MAX_REPORT_CHARS:
        return None
    fields: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.strip().partition("=")
        if not sep or key in fields:
            return None
        fields[key] = value
    if fields.get("v") != VERSION:
        return None
    replica, model = unquote(fields.get("id", "")), unquote(fields.get("model", ""))
    if not (0 < len(replica) <= MAX_NAME_CHARS and 0 < len(model) <= MAX_NAME_CHARS):
        return None
    try:
        gauges = {name: _finite(fields[key]) for key, name in _GAUGES.items()}
        counters = {name: _finite(fields[key]) for key, name in _COUNTERS.items()}
        histograms = {name: _histogram(fields[key]) for key, name in _HISTOGRAMS.items() if key in fields}
    except (KeyError, ValueError):
        return None
    return ReplicaReport(replica, model, EngineSample(counters, gauges, histograms))


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


def _histogram(text: str) -> Histogram:
    """``<sum>|<le>:<cumulative>,...``: bounds ascending and ending at +Inf, counts not decreasing."""
    total, sep, buckets = text.partition("|")
    if not sep or not buckets:
        raise ValueError(text)
    bounds: list[float] = []
    counts: list[float] = []
    for bucket in buckets.split(","):
        bound, sep, count = bucket.partition(":")
        if not sep:
            raise ValueError(bucket)
        bounds.append(math.inf if bound == "+Inf" else float(bound))
        counts.append(_finite(count))
    ascending = all(a < b for a, b in itertools.pairwise(bounds))
    monotone = all(a <= b for a, b in itertools.pairwise(counts))
    if not (ascending and monotone and math.isinf(bounds[-1])):
        raise ValueError(text)
    return Histogram(tuple(bounds), tuple(counts), _finite(total))


class ReplicaReporter:
    """The edge's side: the header to attach (encoded in advance) and the task that keeps it fresh.

    ``header`` is what ``forward`` appends to each relayed answer (None: attach nothing).
    ``touch()`` marks a request arriving. ``refresh_forever`` wakes every ``poll`` seconds;
    when a request arrived since the last read and the snapshot is ``interval`` old, it
    reads the engine's ``/metrics`` through ``fetch`` (None: the engine did not answer) and
    encodes a new header.

    Stale figures: a snapshot older than ``max_age`` is marked stale by the ticker, and the
    next request to arrive drops it (the refresh that request causes brings a new one). So
    the first answers after an idle spell carry nothing rather than gauges from before it,
    while a long request alone on the replica still gets the snapshot taken while it ran.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[str | None]],
        *,
        interval: float,
        replica: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetch = fetch
        self.interval = interval
        self.poll = min(1.0, interval)
        self.max_age = 3 * interval
        self.replica = replica or local_replica_id()
        self.clock = clock
        self.header: tuple[bytes, bytes] | None = None
        self.taken_at = -math.inf
        self.traffic = False
        self.stale = False

    def touch(self) -> None:
        """A request arrived: attribute writes only (this and the append are all the per-request work)."""
        self.traffic = True
        if self.stale:
            self.header = None

    async def refresh_forever(self) -> None:
        """Keep ``header`` fresh while there is traffic; run it in the edge's lifespan task group."""
        while True:
            await self.step()
            await anyio.sleep(self.poll)

    async def step(self) -> None:
        """One tick: read the engine when due and a request came, else mark an old snapshot stale."""
        now = self.clock()
        if self.traffic and now - self.taken_at >= self.interval:
            self.traffic = False
            text = await self.fetch()
            report = engine_report(text, self.replica) if text is not None else None
            self.header = (REPORT_HEADER.encode(), format_report(report).encode()) if report else None
            self.taken_at = now
            self.stale = False
        else:
            self.stale = now - self.taken_at > self.max_age
