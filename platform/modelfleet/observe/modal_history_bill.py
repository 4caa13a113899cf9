"""Each full hour of a ``fleet plots`` window on Modal: what Modal billed the model's app, beside the price table.

``Environment.billing.report(start, end, resolution="h")`` (modal/_environments.py, modal
1.6.4, ``WorkspaceBillingReport``) answers one row per object (an app: ``object_id`` its id)
per full hour, stamped with ``interval_start`` (modal/types.py ``BillingReportItem``);
"partial final intervals will be excluded" (same docstring), so only hours that ended
inside the window are asked for. One call covers every model of the window. A token or
plan without billing access is refused (modal_billing.refusal_note says so in one line),
and the pictures fall back to the price table, labelled so.

The price table's figure for an hour is Modal's container-seconds in that hour (its
``containers``/``mean`` series, one-minute buckets) x ``gpu.count`` at fleet.toml's price
of the model's primary GPU: the same rule as the last-hour cost truth (modal_cost.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from modelfleet.observe.modal_billing import BilledCost, refusal_note
from modelfleet.observe.modal_cost import CostTruth, priced_window
from modelfleet.spec.model import ModelSpec

HOUR_S = 3600.0


@dataclass(frozen=True)
class HourlyBills:
    """Modal's bill per app id and hour start (Unix seconds), or the one line saying why there is none."""

    by_app: dict[str, dict[float, BilledCost]] = field(default_factory=dict)
    refused: str | None = None


def full_hours(since: float, until: float) -> list[float]:
    """Starts of the UTC hours lying wholly inside [since, until): the hours Modal bills in full."""
    first = math.ceil(since / HOUR_S) * HOUR_S
    return [first + i * HOUR_S for i in range(max(0, int((until - first) // HOUR_S)))]


def read_hourly_bills(environment: str, hours: list[float]) -> HourlyBills:
    """One billing report over ``hours`` (hourly rows), split per app and hour; a refusal keeps its reason."""
    if not hours:
        return HourlyBills()
    import modal
    from modal.exception import ConflictError, PermissionDeniedError, UnimplementedError
    from modal.exception import Error as ModalError

    try:
        env = modal.Environment.from_name(environment)
        rows = env.billing.report(start=_utc(hours[0]), end=_utc(hours[-1] + HOUR_S), resolution="h")
    except (PermissionDeniedError, ConflictError, UnimplementedError) as error:
        return HourlyBills(refused=refusal_note(environment, error, refused=True))
    except ModalError as error:  # the pictures still come, on the price table, saying why
        return HourlyBills(refused=refusal_note(environment, error, refused=False))
    by_app: dict[str, dict[float, BilledCost]] = {}
    for row in rows:
        hour = row.interval_start.timestamp()
        resources = {name: float(cost) for name, cost in row.cost_by_resource.items()}
        by_app.setdefault(str(row.object_id), {})[hour] = BilledCost(float(row.cost), resources)
    return HourlyBills(by_app)


def hour_costs(
    model: str,
    app_id: str,
    spec: ModelSpec,
    prices: dict[str, float],
    container_seconds: dict[float, float],
    hours: list[float],
    bills: HourlyBills,
) -> list[CostTruth]:
    """Per full hour: GPU-seconds from Modal's container series, their price-table dollars, Modal's bill, the difference.

    ``container_seconds`` maps each metrics bucket's start to the container-seconds Modal
    counted in it; an hour without any bucket has no GPU-seconds (None), not zero.
    """
    billed_hours = bills.by_app.get(app_id, {})
    costs: list[CostTruth] = []
    for start in hours:
        inside = [seconds for at, seconds in container_seconds.items() if start <= at < start + HOUR_S]
        gpu_seconds = sum(inside) * spec.gpu.count if inside else None
        costs.append(
            priced_window(
                model,
                start,
                start + HOUR_S,
                spec,
                prices,
                gpu_seconds,
                billed_hours.get(start),
                bills.refused,
                metrics_source="Modal metrics (containers, mean per one-minute bucket) x gpu.count",
            )
        )
    return costs


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
