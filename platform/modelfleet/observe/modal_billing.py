"""What Modal billed: each app's cost over full hours, and the environment's metered month, or why not.

``Environment.billing.report(start, end, resolution="h")`` (modal/_environments.py,
``WorkspaceBillingReport``) answers one row per object (an app: ``object_id`` its id,
``description`` its name) per full hour, with ``cost`` and ``cost_by_resource`` as
Decimals (modal/types.py ``BillingReportItem``); "partial end intervals will be excluded"
(same docstring), so the fleet asks for the last *full* hour. ``Environment.billing.summary()``
(``EnvironmentBillingSummary``) is the environment's metered cost this billing cycle, before
workspace-level credits. Both read Modal's ledger: no container is touched.

A workspace whose token or plan has no billing access is refused by Modal
(PERMISSION_DENIED -> ``PermissionDeniedError``; a feature off the plan may come back as
FAILED_PRECONDITION -> ``ConflictError`` or UNIMPLEMENTED -> ``UnimplementedError``,
modal/_grpc_client.py ``_STATUS_TO_EXCEPTION``). The fleet view then keeps going on the
price table, with one line saying why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class BilledCost:
    """One app's bill over the window, total and by Modal's resource names (as Modal spells them)."""

    dollars: float
    by_resource: dict[str, float]


@dataclass(frozen=True)
class ModalBilling:
    """Modal's bill for [since, until) per app id, the environment's month so far, or the reason there is none."""

    since: float
    until: float
    by_app: dict[str, BilledCost] = field(default_factory=dict)
    month_to_date: float | None = None
    refused: str | None = None
    """One line: why Modal's billing is not used (the RPC refused); None when it answered."""


def read_billing(environment: str, since: float, until: float) -> ModalBilling:
    """Modal's hourly billing rows for [since, until) summed per app, and this cycle's metered cost."""
    import modal
    from modal.exception import ConflictError, PermissionDeniedError, UnimplementedError
    from modal.exception import Error as ModalError

    try:
        env = modal.Environment.from_name(environment)
        rows = env.billing.report(start=_utc(since), end=_utc(until), resolution="h")
        summary = env.billing.summary()
    except (PermissionDeniedError, ConflictError, UnimplementedError) as error:
        return ModalBilling(since, until, refused=refusal_note(environment, error, refused=True))
    except ModalError as error:  # any other failure: the view goes on with the price table, saying why
        return ModalBilling(since, until, refused=refusal_note(environment, error, refused=False))
    return ModalBilling(since, until, by_app=_per_app(rows), month_to_date=float(summary.metered_cost))


def refusal_note(environment: str, error: Exception, *, refused: bool) -> str:
    """The one line a refused (or failed) billing call leaves in the view: the error, Modal's message, the fix."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else "no message"
    fix = (
        "give the token billing access (a workspace role or plan with billing) to compare them with Modal's bill"
        if refused
        else "check the Modal environment and try again"
    )
    return (
        f"Modal billing: environment {environment}: {'refused' if refused else 'failed'} "
        f"({type(error).__name__}: {message}); costs are the price table's (fleet.toml [prices]); {fix}"
    )


def _per_app(rows: list[Any]) -> dict[str, BilledCost]:
    """Billing rows (``BillingReportItem``) summed per object (an app's id) over the window's hours."""
    dollars: dict[str, float] = {}
    resources: dict[str, dict[str, float]] = {}
    for row in rows:
        name = str(row.object_id)
        dollars[name] = dollars.get(name, 0.0) + float(row.cost)
        by_resource = resources.setdefault(name, {})
        for resource, cost in row.cost_by_resource.items():
            by_resource[resource] = by_resource.get(resource, 0.0) + float(cost)
    return {name: BilledCost(dollars[name], resources[name]) for name in sorted(dollars)}


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
