"""Local replicas: each running model's vLLM ``/metrics``, read over its Unix socket on this machine.

The local target serves vLLM on a socket (``--uds``, targets/local/runs.py), so the scrape
goes where the engine is, never through the edge: no token, no client traffic counted.
One model has one replica here (the local target does not autoscale).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from modelfleet.observe.samples import EngineSample, parse_metrics
from modelfleet.targets.local.runs import LocalRun, RunBook

SCRAPE_TIMEOUT = 5.0


@dataclass(frozen=True)
class ReplicaScrape:
    """One replica as read now: its state and, when it answered, its metrics."""

    model: str
    replica: str
    state: str
    """``running`` (it answered /metrics) or ``starting`` (its supervisor has not seen it ready)."""
    sample: EngineSample | None
    at: float


def scrape_local(book: RunBook, *, now: float | None = None) -> list[ReplicaScrape]:
    """Every local model's replica: ready ones scraped, the others counted as starting (a failed run: none)."""
    taken = time.time() if now is None else now
    replicas: list[ReplicaScrape] = []
    for run in book.all():
        if run.state == "failed" or run.state == "stopping":
            continue
        sample = _scrape(book, run) if run.state == "ready" else None
        state = "running" if sample is not None else "starting"
        replicas.append(ReplicaScrape(run.model, _replica_id(run), state, sample, taken))
    return replicas


def _replica_id(run: LocalRun) -> str:
    """Engine pid: a restarted engine is a new replica (its counters start from 0)."""
    return f"local-{run.engine_pid}"


def _scrape(book: RunBook, run: LocalRun) -> EngineSample | None:
    """The engine's metrics, or None when it does not answer (it died, or is restarting)."""
    socket = book.socket_path(run.model)
    transport = httpx.HTTPTransport(uds=str(socket))
    try:
        with httpx.Client(transport=transport, timeout=SCRAPE_TIMEOUT) as client:
            response = client.get("http://engine/metrics")
    except httpx.HTTPError:
        return None
    return parse_metrics(response.text) if response.status_code == 200 else None
