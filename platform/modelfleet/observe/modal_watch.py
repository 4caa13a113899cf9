"""The Modal side of the fleet view, round after round: live counts each round, the last hour and the bill less often.

Each round asks ``FunctionGetCurrentStats`` per model (``modal_source``). Modal's last-hour
figures (``modal_figures``: time-range stats, metrics, app stats) change slowly and cost
three calls per model, so they are re-read once a ``refresh_s`` (60 s); Modal's bill
(``modal_billing``) covers the last full hour, so it is read once per hour. None of these
calls sends an input or starts a container (tests/contract/test_modal_observe.py counts).
A model whose figures cannot be read leaves a note and the others go on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelfleet.catalog import Catalog
from modelfleet.observe.modal_billing import ModalBilling, read_billing
from modelfleet.observe.modal_cost import CostTruth, cost_truth
from modelfleet.observe.modal_figures import HOUR_S, ModalFigures, ModalServing, read_figures
from modelfleet.observe.modal_source import ModalCurrent, ModalStatsReader, modal_views
from modelfleet.observe.view import ModelView
from modelfleet.settings import FleetSettings

FIGURES_REFRESH_S = 60.0


@dataclass(frozen=True)
class ModalSnapshot:
    """One round of the Modal view: rows for ``fleet top``, the last hour's figures, the cost truth, notes."""

    at: float
    current: list[ModalCurrent]
    views: list[ModelView]
    figures: dict[str, ModalFigures]
    costs: list[CostTruth]
    billing: ModalBilling | None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The figures Modal reported, for ``fleet top --format json`` (under ``modal``)."""
        billing = self.billing
        return {
            "figures": {model: f.as_json() for model, f in sorted(self.figures.items())},
            "billing": None
            if billing is None
            else {
                "since": billing.since,
                "until": billing.until,
                "available": billing.refused is None,
                "month_to_date_dollars": billing.month_to_date,
            },
        }


def last_full_hour(now: float) -> tuple[float, float]:
    """The last hour Modal has billed in full: [start, end) on hour boundaries, ``end`` <= ``now``."""
    end = math.floor(now / HOUR_S) * HOUR_S
    return end - HOUR_S, end


@dataclass
class ModalWatch:
    """Rounds of Modal's counts, with the last hour's figures and bill re-read only when they can have changed."""

    settings: FleetSettings
    catalog: Catalog
    reader: ModalStatsReader
    clock: Callable[[], float] = time.time
    figures_reader: Callable[[ModalServing, float, float, float], ModalFigures] = read_figures
    billing_reader: Callable[[str, float, float], ModalBilling] = read_billing
    refresh_s: float = FIGURES_REFRESH_S
    figures: dict[str, ModalFigures] = field(default_factory=dict)
    figure_notes: list[str] = field(default_factory=list)
    figures_at: float | None = None
    billing: ModalBilling | None = None

    def round(self) -> ModalSnapshot:
        """Current counts now; the last hour's figures and bill when due; the rows and the cost truth from them."""
        now = self.clock()
        current = self.reader.read()
        if self.figures_at is None or now - self.figures_at >= self.refresh_s:
            self._refresh(now)
        prices = dict(self.settings.prices.per_hour)
        costs = [
            cost_truth(
                figures, self.reader.servings[model].app.app_id, self.catalog.models[model].spec, self.billing, prices
            )
            for model, figures in sorted(self.figures.items())
            if self.billing is not None and model in self.catalog.models
        ]
        notes = [*self.figure_notes]
        if self.billing is not None and self.billing.refused is not None:
            notes.append(self.billing.refused)
        views = modal_views(current, self.catalog, prices, self.figures)
        return ModalSnapshot(now, current, views, dict(self.figures), costs, self.billing, notes)

    def _refresh(self, now: float) -> None:
        from modal.exception import Error as ModalError

        since, until = last_full_hour(now)
        self.figures, self.figure_notes = {}, []
        for model, serving in sorted(self.reader.servings.items()):
            try:
                self.figures[model] = self.figures_reader(serving, now - HOUR_S, now, since)
            except ModalError as error:
                self.figure_notes.append(
                    f"{model}: Modal stats: {type(error).__name__}: {error}; its last-hour figures are left out"
                )
        if self.billing is None or self.billing.until != until:
            self.billing = self.billing_reader(self.settings.modal_environment, since, until)
        self.figures_at = now
