"""``fleet plan`` and ``fleet cost``: what a deploy would do, and what the fleet costs.

Like ``terraform plan``: create / update (which fields, old -> new) / unchanged /
orphan, plus what it does to the fleet's idle floor and ceiling cost. The figures come
from one cost model (``spec/cost.py``); the CLI only renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from modelfleet.catalog import Catalog
from modelfleet.settings import FleetSettings
from modelfleet.spec.cost import HOURS_PER_MONTH, ModelCost, model_cost
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


StateKind = Literal["live", "file", "none"]


@dataclass(frozen=True)
class StateSource:
    """Which deployed state a plan was computed against, and how old it is: a reviewer must know.

    ``live``: read from the target now (on Modal the environment's state Dict); ``file``: an
    export (``fleet state export``, e.g. the last merge run's artifact) with the time it was
    read; ``none``: no state at all, chosen explicitly, so every model shows as create.
    """

    kind: StateKind
    where: str
    read_at: str = ""
    """ISO time the state was read from the target; empty when the file does not say."""

    def age(self, now: datetime | None = None) -> str:
        """``3h 12m``, ``2d 4h``; ``unknown`` when the read time is not recorded."""
        if self.kind == "live":
            return "0m"
        if not self.read_at:
            return "unknown"
        seconds = int(((now or datetime.now(UTC)) - datetime.fromisoformat(self.read_at)).total_seconds())
        days, rest = divmod(max(seconds, 0), 86400)
        hours, minutes = rest // 3600, rest % 3600 // 60
        return f"{days}d {hours}h" if days else f"{hours}h {minutes}m"

    def describe(self, now: datetime | None = None) -> str:
        """One line for the plan's header."""
        if self.kind == "live":
            return f"live state of {self.where}, read now"
        if self.kind == "none":
            return f"no deployed state ({self.where}): every model shows as create"
        when = (
            f"exported {self.read_at}, {self.age(now)} old" if self.read_at else "export time not recorded, age unknown"
        )
        return f"state file {self.where} ({when})"


@dataclass(frozen=True)
class Plan:
    """Every entry, with the fleet-wide cost change, the environment and the state it was computed against."""

    entries: list[PlanEntry] = field(default_factory=list)
    environment: str = ""
    source: StateSource | None = None

    @property
    def has_changes(self) -> bool:
        """Whether applying the plan would change anything."""
        return any(e.action != "unchanged" for e in self.entries)

    @property
    def counts(self) -> dict[Action, int]:
        """How many entries take each action (every action present, zero included)."""
        return {action: sum(1 for e in self.entries if e.action == action) for action in get_args(Action)}

    @property
    def floor_before(self) -> float:
        """The fleet's idle floor, $/h, as deployed."""
        return sum(e.floor_before for e in self.entries)

    @property
    def floor_after(self) -> float:
        """The fleet's idle floor, $/h, once the plan is applied."""
        return sum(e.floor_after for e in self.entries)

    @property
    def ceiling_before(self) -> float:
        """The fleet's ceiling, $/h, as deployed."""
        return sum(e.ceiling_before for e in self.entries)

    @property
    def ceiling_after(self) -> float:
        """The fleet's ceiling, $/h, once the plan is applied."""
        return sum(e.ceiling_after for e in self.entries)


def make_plan(
    catalog: Catalog,
    state: FleetState,
    settings: FleetSettings,
    only: list[str] | None = None,
    source: StateSource | None = None,
) -> Plan:
    """Compare the catalog with the deployed state (``source`` says which one, for the header)."""
    prices = settings.prices.per_hour
    entries = []
    for name, model in sorted(catalog.models.items()):
        if only and name not in only:
            continue
        app = settings.app_name(name)
        spec = model.spec
        after = model_cost(spec, prices)
        record = state.models.get(name)
        if record is None:
            entries.append(PlanEntry(name, app, "create", (), 0.0, after.floor, 0.0, after.ceiling))
            continue
        before = _recorded_cost(record.spec, prices)
        if record.spec_hash == model.spec_hash():
            entries.append(
                PlanEntry(name, app, "unchanged", (), before.floor, after.floor, before.ceiling, after.ceiling)
            )
            continue
        changes = tuple(diff(record.spec, spec.model_dump(mode="json")))
        entries.append(
            PlanEntry(name, app, "update", changes, before.floor, after.floor, before.ceiling, after.ceiling)
        )
    for name, record in sorted(state.models.items()):
        if name not in catalog.models and not (only and name not in only):
            if any(p.file.parent.name == name for p in catalog.errors):
                continue  # a broken folder is not an orphan: validate reports it
            before = _recorded_cost(record.spec, prices)
            entries.append(PlanEntry(name, record.app, "orphan", (), before.floor, 0.0, before.ceiling, 0.0))
    return Plan(entries, environment=settings.environment_label, source=source)


def diff(old: Any, new: Any, prefix: str = "") -> list[FieldChange]:
    """Leaf-level differences between two JSON-like trees, as dotted paths."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[FieldChange] = []
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}.{key}" if prefix else str(key)
            changes.extend(diff(old.get(key), new.get(key), path))
        return changes
    return [] if old == new else [FieldChange(prefix, old, new)]


_UNKNOWN_COST = ModelCost(gpu_price=None, floor=0.0, ceiling=0.0)


def _recorded_cost(spec_data: dict[str, Any], prices: dict[str, float]) -> ModelCost:
    try:
        spec = ModelSpec.model_validate(spec_data)
    except ValueError:
        return _UNKNOWN_COST  # recorded by an older platform version: cost unknown
    return model_cost(spec, prices)


@dataclass(frozen=True)
class CostLine:
    """One model's row of ``fleet cost``."""

    model: str
    gpus: tuple[str, ...]
    """The GPU options in Modal's notation, primary first (only the primary is priced)."""
    cost: ModelCost


@dataclass(frozen=True)
class FleetCost:
    """Every model's idle floor and ceiling, with the fleet's totals."""

    lines: tuple[CostLine, ...]

    @property
    def floor(self) -> float:
        """$/h the fleet costs with no traffic at all."""
        return sum(line.cost.floor for line in self.lines)

    @property
    def floor_per_month(self) -> float:
        """The idle floor over a month."""
        return self.floor * HOURS_PER_MONTH

    @property
    def ceiling(self) -> float:
        """$/h with every model at max_containers."""
        return sum(line.cost.ceiling for line in self.lines)


def fleet_cost(catalog: Catalog, settings: FleetSettings) -> FleetCost:
    """``fleet cost``: every valid model at the fleet's GPU prices, sorted by name."""
    prices = settings.prices.per_hour
    return FleetCost(
        tuple(
            CostLine(name, tuple(model.spec.gpu.modal_refs()), model_cost(model.spec, prices))
            for name, model in sorted(catalog.models.items())
        )
    )
