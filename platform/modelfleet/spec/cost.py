"""What a model costs per hour: its idle floor and its ceiling, from the fleet's GPU price table.

One cost model for every reader: ``fleet cost``, ``fleet plan``'s before/after columns and the
lints that warn about an always-on floor or a GPU the table has no price for. Only the primary
GPU option is priced: Modal falls back to the others when it is scarce, so they are the
exception, not the bill.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelfleet.spec.findings import Finding
from modelfleet.spec.model import ModelSpec

HOURS_PER_MONTH = 730.0


@dataclass(frozen=True)
class ModelCost:
    """One model's hourly cost on its primary GPU option, idle floor and ceiling."""

    gpu_price: float | None
    """$/GPU-hour of the primary GPU; None when the price table has none (counted as $0, and linted)."""
    floor: float
    """$/h of ``scaling.min_containers`` containers: billed even with no traffic."""
    ceiling: float
    """$/h of ``scaling.max_containers`` containers: the most the model can cost."""

    @property
    def floor_per_month(self) -> float:
        """The idle floor over a month of ``HOURS_PER_MONTH`` hours."""
        return self.floor * HOURS_PER_MONTH


def hourly_cost(spec: ModelSpec, prices: dict[str, float], containers: int) -> float:
    """$/h of ``containers`` containers on the primary GPU option ($0 for a GPU without a price)."""
    return containers * spec.gpu.count * prices.get(spec.gpu.type, 0.0)


def model_cost(spec: ModelSpec, prices: dict[str, float]) -> ModelCost:
    """The floor and ceiling of one model at ``prices`` ($/GPU-hour by GPU type)."""
    return ModelCost(
        gpu_price=prices.get(spec.gpu.type),
        floor=hourly_cost(spec, prices, spec.scaling.min_containers),
        ceiling=hourly_cost(spec, prices, spec.scaling.max_containers),
    )


def cost_findings(spec: ModelSpec, prices: dict[str, float]) -> list[Finding]:
    """Warnings about what a model costs: a GPU without a price, and an always-on floor."""
    return [*_gpu_is_priced(spec, prices), *_floor_cost(spec, prices)]


def _gpu_is_priced(spec: ModelSpec, prices: dict[str, float]) -> list[Finding]:
    """A GPU missing from the price table would make the model look free in every cost figure."""
    if spec.gpu.type in prices:
        return []
    known = ", ".join(sorted(prices)) or "none"
    return [
        Finding(
            "warning",
            "gpu.type",
            f"fleet.toml's prices.per_hour has no price for {spec.gpu.type} (priced: {known}), so `fleet cost` and "
            f"`fleet plan` count this model at $0/h; add {spec.gpu.type}'s $/GPU-hour and update prices.date",
        )
    ]


def _floor_cost(spec: ModelSpec, prices: dict[str, float]) -> list[Finding]:
    floor = spec.scaling.min_containers
    if floor == 0:
        return []
    hourly = hourly_cost(spec, prices, floor)
    return [
        Finding(
            "warning",
            "scaling.min_containers",
            f"min_containers = {floor} keeps {floor} x {spec.gpu.type} x{spec.gpu.count} running even when idle: "
            f"${hourly:,.2f}/h, about ${hourly * HOURS_PER_MONTH:,.0f}/month",
        )
    ]
