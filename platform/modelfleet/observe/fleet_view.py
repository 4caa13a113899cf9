"""The fleet view of the configured target: scrape twice, a rate interval apart, and price it.

The one entry point the CLI (``fleet top``) and the Prometheus collectors share.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from modelfleet.catalog import Catalog
from modelfleet.errors import FleetError
from modelfleet.observe.exposition import FleetCollector, ReplicaStore
from modelfleet.observe.local_source import ReplicaScrape, scrape_local
from modelfleet.observe.modal_source import ModalStatsReader, modal_views
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
        "fleet.toml: target: engine series (fleet metrics, live fleet top) are read on the local target only so far; "
        "on Modal use `fleet top --once` (Modal's own container and input counts): a scrape of the public URL "
        "would keep scale-to-zero containers awake, so fleet does not do one"
    )


def watch(settings: FleetSettings, catalog: Catalog) -> FleetWatch:
    """A ``FleetWatch`` over the configured target at fleet.toml's GPU prices."""
    return FleetWatch(scraper_for(settings), catalog, dict(settings.prices.per_hour))


def views_once(settings: FleetSettings, catalog: Catalog, interval: float) -> list[ModelView]:
    """Two rounds ``interval`` seconds apart: the second, with rates (Modal: one read of Modal's own counts)."""
    if settings.target == "modal":
        reader = ModalStatsReader(settings, sorted(catalog.models))
        return modal_views(reader.read(), catalog, dict(settings.prices.per_hour))
    fleet = watch(settings, catalog)
    fleet.round()
    time.sleep(interval)  # the rate window itself, not a wait for a condition
    return fleet.round()


def frames(settings: FleetSettings, catalog: Catalog) -> Callable[[], list[ModelView]]:
    """What a live ``fleet top`` calls each refresh: local rounds (rates between them) or Modal's current counts."""
    if settings.target == "modal":
        reader = ModalStatsReader(settings, sorted(catalog.models))
        prices = dict(settings.prices.per_hour)
        return lambda: modal_views(reader.read(), catalog, prices)
    return watch(settings, catalog).round


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
