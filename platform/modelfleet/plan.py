"""``fleet plan``: what a deploy would do, per model, before anything changes.

Like ``terraform plan``: create / update (which fields, old -> new) / unchanged /
orphan, plus what it does to the fleet's idle floor and ceiling cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from modelfleet.catalog import Catalog
from modelfleet.settings import FleetSettings
from modelfleet.spec.lints import hourly_cost
from modelfleet.spec.model import ModelSpec
from modelfleet.state import FleetState

Action = Literal["create", "update", "unchanged", "orphan"]


@dataclass(frozen=True)
class FieldChange:
    """One changed field, dotted path and both values."""

    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class PlanEntry:
    """The plan for one model (or one orphaned app)."""

    model: str
    app: str
    action: Action
    changes: tuple[FieldChange, ...] = ()
    floor_before: float = 0.0
    floor_after: float = 0.0
    ceiling_before: float = 0.0
    ceiling_after: float = 0.0


@dataclass(frozen=True)
class Plan:
    """Every entry, with the fleet-wide cost change."""

    entries: list[PlanEntry] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        """Whether applying the plan would change anything."""
        return any(e.action != "unchanged" for e in self.entries)

    def total(self, attribute: str) -> float:
        """Sum of one cost attribute over the entries."""
        return float(sum(getattr(e, attribute) for e in self.entries))


def make_plan(catalog: Catalog, state: FleetState, settings: FleetSettings, only: list[str] | None = None) -> Plan:
    """Compare the catalog with the deployed state."""
    prices = settings.prices.per_hour
    entries = []
    for name, model in sorted(catalog.models.items()):
        if only and name not in only:
            continue
        app = settings.app_name(name)
        spec = model.spec
        floor_after = hourly_cost(spec, prices, spec.scaling.min_containers)
        ceiling_after = hourly_cost(spec, prices, spec.scaling.max_containers)
        record = state.models.get(name)
        if record is None:
            entries.append(PlanEntry(name, app, "create", (), 0.0, floor_after, 0.0, ceiling_after))
            continue
        floor_before, ceiling_before = _recorded_costs(record.spec, prices)
        if record.spec_hash == model.spec_hash():
            entries.append(
                PlanEntry(name, app, "unchanged", (), floor_before, floor_after, ceiling_before, ceiling_after)
            )
            continue
        changes = tuple(diff(record.spec, spec.model_dump(mode="json")))
        entries.append(
            PlanEntry(name, app, "update", changes, floor_before, floor_after, ceiling_before, ceiling_after)
        )
    for name, record in sorted(state.models.items()):
        if name not in catalog.models and not (only and name not in only):
            if any(p.file.parent.name == name for p in catalog.errors):
                continue  # a broken folder is not an orphan: validate reports it
            floor_before, ceiling_before = _recorded_costs(record.spec, prices)
            entries.append(PlanEntry(name, record.app, "orphan", (), floor_before, 0.0, ceiling_before, 0.0))
    return Plan(entries)


def diff(old: Any, new: Any, prefix: str = "") -> list[FieldChange]:
    """Leaf-level differences between two JSON-like trees, as dotted paths."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[FieldChange] = []
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}.{key}" if prefix else str(key)
            changes.extend(diff(old.get(key), new.get(key), path))
        return changes
    return [] if old == new else [FieldChange(prefix, old, new)]


def _recorded_costs(spec_data: dict[str, Any], prices: dict[str, float]) -> tuple[float, float]:
    try:
        spec = ModelSpec.model_validate(spec_data)
    except ValueError:
        return 0.0, 0.0  # recorded by an older platform version: cost unknown
    return hourly_cost(spec, prices, spec.scaling.min_containers), hourly_cost(
        spec, prices, spec.scaling.max_containers
    )
