"""Cost truth on Modal: GPU-seconds from Modal's figures, priced by fleet.toml, beside Modal's own bill.

For one window (the last full hour: Modal bills full hours only) and one model:

- **GPU-seconds** come from Modal's metrics (container-seconds of a ``containers``/``mean``
  series, ``modal_figures``) times the model's ``gpu.count``: Modal counted the containers.
- **Price table**: those GPU-seconds at fleet.toml's ``prices.per_hour`` for the model's
  primary GPU (spec/cost.py prices the same way). It counts GPUs only.
- **Modal's bill**: the app's rows of ``Environment.billing.report`` (``modal_billing``):
  what Modal charges, GPU, CPU and memory together, at its current rates.
- **Difference** = bill - price table, shown only when both exist: CPU and memory, a
  fallback GPU, and a stale price in fleet.toml all land here.

Where Modal reports no container series, GPU-seconds and the price-table figure for the
window are None (the view's ``$/h`` now, current containers at the price table, stays);
where billing was refused, the bill is None and ``note`` says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from modelfleet.observe.modal_billing import BilledCost, ModalBilling
from modelfleet.observe.modal_figures import ModalFigures
from modelfleet.spec.model import ModelSpec

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class CostTruth:
    """One model's cost over [since, until): GPU-seconds, the price table's dollars, Modal's bill, the difference."""

    model: str
    since: float
    until: float
    gpu_type: str
    gpu_seconds: float | None
    """Container-seconds from Modal's metrics x gpu.count; None when Modal reported no container series."""
    price_table_dollars: float | None
    billed_dollars: float | None
    """What Modal billed the model's app; None when billing was refused or unread."""
    billed_by_resource: dict[str, float] = field(default_factory=dict)
    difference_dollars: float | None = None
    """``billed_dollars - price_table_dollars`` when both exist."""
    sources: dict[str, str] = field(default_factory=dict)
    """Where each figure came from (``gpu_seconds``, ``price_table_dollars``, ``billed_dollars``)."""
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Plain JSON values."""
        return asdict(self)


def cost_truth(
    figures: ModalFigures,
    app_id: str,
    spec: ModelSpec,
    billing: ModalBilling,
    prices: dict[str, float],
) -> CostTruth:
    """The model's cost over the billing window, from Modal's figures where it has them, the price table otherwise."""
    container_seconds = figures.container_seconds_between(billing.since, billing.until)
    gpu_seconds = None if container_seconds is None else container_seconds * spec.gpu.count
    return priced_window(
        figures.model,
        billing.since,
        billing.until,
        spec,
        prices,
        gpu_seconds,
        billing.by_app.get(app_id),
        billing.refused,
        metrics_source="Modal metrics (containers, mean per bucket) x gpu.count",
    )


def priced_window(
    model: str,
    since: float,
    until: float,
    spec: ModelSpec,
    prices: dict[str, float],
    gpu_seconds: float | None,
    billed: BilledCost | None,
    refused: str | None,
    *,
    metrics_source: str,
) -> CostTruth:
    """One window's cost truth: ``gpu_seconds`` priced from the table beside Modal's bill, the difference, the sources.

    ``billed`` is Modal's row for the app in the window; with billing answered (``refused``
    None), no row means Modal billed it nothing then. ``fleet top`` (the last full hour) and
    ``fleet plots`` (each hour of a window) both build theirs here.
    """
    price = prices.get(spec.gpu.type)
    price_table = None if gpu_seconds is None or price is None else gpu_seconds / SECONDS_PER_HOUR * price
    billed_dollars = None if refused is not None else (billed.dollars if billed is not None else 0.0)
    sources = {
        "gpu_seconds": metrics_source if gpu_seconds is not None else "not reported by Modal's metrics",
        "price_table_dollars": f"fleet.toml prices.per_hour[{spec.gpu.type}]"
        if price is not None
        else f"fleet.toml has no price for {spec.gpu.type}",
        "billed_dollars": "Modal billing report (Environment.billing.report, hourly)"
        if refused is None
        else "refused by Modal",
    }
    return CostTruth(
        model=model,
        since=since,
        until=until,
        gpu_type=spec.gpu.type,
        gpu_seconds=gpu_seconds,
        price_table_dollars=price_table,
        billed_dollars=billed_dollars,
        billed_by_resource=dict(billed.by_resource) if billed is not None else {},
        difference_dollars=None if billed_dollars is None or price_table is None else billed_dollars - price_table,
        sources=sources,
        note=refused,
    )
