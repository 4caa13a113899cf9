"""Modal's billing for the loopback API: the per-object report and the environment's month, from what ran.

Each handler mirrors one client call of modal 1.6.4:

- ``WorkspaceBillingReport`` (a response stream): ``Environment.billing.report()``
  (modal/_environments.py, ``environment_ids=[...]``) and ``Workspace.billing.report()``
  (modal/_workspace.py); each item parsed by ``BillingReportItem._from_proto``
  (modal/types.py): one row per object (an app: ``object_id`` its id, ``description`` its
  name) per full interval (``resolution`` "h" or "d"), ``cost`` and ``cost_by_resource`` as
  decimal strings. "Cost will be reported for full intervals ... partial end intervals will
  be excluded" (modal.billing docs), and an interval still running is partial.
- ``EnvironmentBillingSummary``: ``Environment.billing.summary()``, parsed by
  ``EnvironmentBillingSummary._from_proto``: the metered cost of one billing cycle (a
  calendar month starting at ``start_timestamp``, which must be the first of a month).

Costs come from the recorder's containers at Modal's per-second rates (``app_costs``).
A workspace whose plan or token has no billing access is refused: ``refuse_billing()``
makes both RPCs answer PERMISSION_DENIED (the client raises ``PermissionDeniedError``,
modal/_grpc_client.py ``_STATUS_TO_EXCEPTION``). An unknown environment id is NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from google.protobuf.message import Message
from grpclib import GRPCError, Status
from modal_proto import api_pb2

from .modal_api_state import AppRecord, ModalState
from .modal_api_usage import UsageBook, app_costs, seconds_of, timestamp_of

INTERVAL_S = {"h": 3600, "d": 86400}


class BillingHandlers:
    """Mixin: WorkspaceBillingReport and EnvironmentBillingSummary."""

    state: ModalState

    def usage_book(self) -> UsageBook:  # supplied by StatsHandlers
        raise NotImplementedError

    # Mirrors Environment/Workspace.billing.report() (modal/_environments.py, modal/_workspace.py: a
    # unary_stream); each item parsed by BillingReportItem._from_proto (modal/types.py).
    def rpc_WorkspaceBillingReport(
        self, req: api_pb2.WorkspaceBillingReportRequest, meta: Mapping[str, str]
    ) -> list[Message]:
        self._check_billing_access()
        if req.resolution not in INTERVAL_S:
            raise GRPCError(Status.INVALID_ARGUMENT, f"Unknown resolution {req.resolution!r}; use 'h' or 'd'.")
        environments = [self._environment_name(env_id) for env_id in req.environment_ids]
        interval = INTERVAL_S[req.resolution]
        start = int(seconds_of(req.start_timestamp)) // interval * interval
        end = min(seconds_of(req.end_timestamp), self.usage_book().clock())
        items: list[Message] = []
        for app in self._billed_apps(environments, list(req.app_ids)):
            at = start
            while at + interval <= end:  # full intervals only
                costs = app_costs(self.state, self.usage_book(), app, at, at + interval)
                if costs:
                    item = api_pb2.WorkspaceBillingReportItem(
                        object_id=app.app_id,
                        description=app.name or app.description,
                        environment_name=app.environment,
                        interval=timestamp_of(at),
                        cost=_decimal(sum(costs.values())),
                    )
                    for resource, cost in costs.items():
                        item.cost_by_resource[resource] = _decimal(cost)
                    items.append(item)
                at += interval
        return items

    # Mirrors Environment.billing.summary() (modal/_environments.py); parsed by EnvironmentBillingSummary._from_proto.
    def rpc_EnvironmentBillingSummary(
        self, req: api_pb2.EnvironmentBillingSummaryRequest, meta: Mapping[str, str]
    ) -> Message:
        self._check_billing_access()
        environment = self._environment_name(req.environment_id)
        start = datetime.fromtimestamp(seconds_of(req.start_timestamp), UTC)
        if (start.day, start.hour, start.minute, start.second) != (1, 0, 0, 0):
            raise GRPCError(Status.INVALID_ARGUMENT, "Provided 'cycle' parameter must be the first of a month.")
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        until = min(end.timestamp(), self.usage_book().clock())
        breakdown: dict[str, float] = {}
        for app in self._billed_apps([environment], []):
            for resource, cost in app_costs(self.state, self.usage_book(), app, start.timestamp(), until).items():
                breakdown[resource] = breakdown.get(resource, 0.0) + cost
        resp = api_pb2.EnvironmentBillingSummaryResponse(
            start_timestamp=req.start_timestamp,
            end_timestamp=timestamp_of(end.timestamp()),
            metered_cost=_decimal(sum(breakdown.values())),
        )
        for resource, cost in breakdown.items():
            resp.metered_cost_breakdown[resource] = _decimal(cost)
        return resp

    def _check_billing_access(self) -> None:
        refusal = self.usage_book().billing_refusal
        if refusal is not None:
            raise GRPCError(refusal[0], refusal[1])

    def _environment_name(self, environment_id: str) -> str:
        """The environment behind an id the recorder issued (``en-<name>``, rpc_EnvironmentGetOrCreate)."""
        known = {self.state.environment} | {app.environment for app in self.state.apps.values()}
        name = environment_id.removeprefix("en-")
        if not environment_id.startswith("en-") or name not in known:
            raise GRPCError(Status.NOT_FOUND, f"Environment '{environment_id}' not found")
        return name

    def _billed_apps(self, environments: list[str], app_ids: list[str]) -> list[AppRecord]:
        """Apps of the environments (all when none named) and of ``app_ids`` (all when none named)."""
        return [
            app
            for app in self.state.apps.values()
            if (not environments or app.environment in environments) and (not app_ids or app.app_id in app_ids)
        ]


def _decimal(value: float) -> str:
    """A cost as Modal sends it: a decimal string (``Decimal(pb_item.cost)`` on the client)."""
    return f"{value:.6f}"
