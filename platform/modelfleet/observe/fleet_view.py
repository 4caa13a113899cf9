"""The fleet view of the configured target: scrape twice, a rate interval apart, and price it.

The one entry point the CLI (``fleet top``, ``fleet metrics``) and the Prometheus collectors
share. On Modal the rows come from Modal's own figures (``modal_watch``), with the cost truth
of the last full hour beside them; the CLI shows whatever a ``FleetFrame`` carries and never
asks which target it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from modelfleet.catalog import Catalog
from modelfleet.errors import FleetError
from modelfleet.observe.exposition import FleetCollector, ReplicaStore, fleet_registry
from modelfleet.observe.local_source import ReplicaScrape, scrape_local
from modelfleet.observe.modal_cost import CostTruth
from modelfleet.observe.modal_exposition import ModalCollector, modal_registry
from modelfleet.observe.modal_source import ModalStatsReader
from modelfleet.observe.modal_watch import ModalSnapshot, ModalWatch
from modelfleet.observe.view import ModelView, model_views
from modelfleet.settings import ComparedApi, FleetSettings
from modelfleet.targets.local.runs import RunBook


@dataclass
class FleetWatch:
    """Scrapes of the fleet, round after round: each round's rates come from the round before."""

    scrape: Callable[[], list[ReplicaScrape]]
    catalog: Catalog
    prices: dict[str, float]
    last: list[ReplicaScrape] = field(default_factory=list)

    def round(self) -> list[ModelView]:
        """Scrape now and return each model's view (rates against the previous round)."""
        now = self.scrape()
        views = model_views(self.last, now, {name: m.spec for name, m in self.catalog.models.items()}, self.prices)
        self.last = now
        return views


def scraper_for(settings: FleetSettings) -> Callable[[], list[ReplicaScrape]]:
    """How the configured target's replicas are read (the local target: each engine's /metrics)."""
    if settings.target == "local":
        book = RunBook(settings.state_path)
        return lambda: scrape_local(book)
    raise FleetError(
        "fleet.toml: target: per-replica engine series are read on the local target only; on Modal, `fleet top` and "
        "`fleet metrics` read Modal's own figures (observe/fleet_view.py registry_for): a scrape of the public URL "
        "would keep scale-to-zero containers awake, so fleet does not do one"
    )


def watch(settings: FleetSettings, catalog: Catalog) -> FleetWatch:
    """A ``FleetWatch`` over the configured target at fleet.toml's GPU prices."""
    return FleetWatch(scraper_for(settings), catalog, dict(settings.prices.per_hour))


@dataclass(frozen=True)
class FleetFrame:
    """One frame of ``fleet top``: the rows, and what the platform itself reported (Modal: figures, cost truth)."""

    views: list[ModelView]
    costs: list[CostTruth] = field(default_factory=list)
    """The last full hour's cost per model: price table beside the platform's bill (empty where none is read)."""
    platform: dict[str, Any] = field(default_factory=dict)
    """Extra JSON keys of the platform's own figures (``{"modal": ...}``); empty on the local target."""
    notes: list[str] = field(default_factory=list)
    """One line per figure the platform did not give, and why (e.g. billing refused)."""


def modal_watch(settings: FleetSettings, catalog: Catalog) -> ModalWatch:
    """A ``ModalWatch`` over every model of the catalog (the deployed ones are found on the first round)."""
    return ModalWatch(settings, catalog, ModalStatsReader(settings, sorted(catalog.models)))


def _modal_frame(snapshot: ModalSnapshot) -> FleetFrame:
    return FleetFrame(snapshot.views, snapshot.costs, {"modal": snapshot.as_json()}, snapshot.notes)


def frame_once(settings: FleetSettings, catalog: Catalog, interval: float) -> FleetFrame:
    """Local: two rounds ``interval`` seconds apart, the second with rates. Modal: one round of Modal's figures."""
    if settings.target == "modal":
        return _modal_frame(modal_watch(settings, catalog).round())
    fleet = watch(settings, catalog)
    fleet.round()
    time.sleep(interval)  # the rate window itself, not a wait for a condition
    return FleetFrame(fleet.round())


def live_frames(settings: FleetSettings, catalog: Catalog) -> Callable[[], FleetFrame]:
    """What a live ``fleet top`` calls each refresh: local rounds (rates between them) or Modal's rounds."""
    if settings.target == "modal":
        modal = modal_watch(settings, catalog)
        return lambda: _modal_frame(modal.round())
    local = watch(settings, catalog)
    return lambda: FleetFrame(local.round())


def views_once(settings: FleetSettings, catalog: Catalog, interval: float) -> list[ModelView]:
    """The rows of ``frame_once``."""
    return frame_once(settings, catalog, interval).views


def frames(settings: FleetSettings, catalog: Catalog) -> Callable[[], list[ModelView]]:
    """The rows of ``live_frames``, refresh after refresh."""
    frame = live_frames(settings, catalog)
    return lambda: frame().views


def compare_json(compare: ComparedApi | None) -> dict[str, object] | None:
    """The ``[compare]`` table as JSON (None when fleet.toml has none)."""
    return None if compare is None else compare.model_dump()


def collector_for(settings: FleetSettings, catalog: Catalog, ttl: float) -> FleetCollector:
    """The Prometheus collector of the configured target (labels: its target and environment)."""
    return FleetCollector(
        scrape=scraper_for(settings),
        target=settings.target,
        environment=settings.env or settings.modal_environment,
        specs={name: m.spec for name, m in catalog.models.items()},
        prices=dict(settings.prices.per_hour),
        store=ReplicaStore(ttl=ttl),
    )


def registry_for(settings: FleetSettings, catalog: Catalog, ttl: float) -> CollectorRegistry:
    """The Prometheus registry of the configured target: engine series per replica (local) or Modal's figures."""
    environment = settings.env or settings.modal_environment
    if settings.target == "modal":
        return modal_registry(ModalCollector(modal_watch(settings, catalog), settings.target, environment))
    return fleet_registry(collector_for(settings, catalog, ttl))
