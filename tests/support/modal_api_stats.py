"""Modal's stats for the loopback API: live counts, time ranges, metrics, billing, and what would wake a container.

Why: the fleet view reads Modal's own counts (``Function.get_current_stats()``, modal
1.6.4 modal/_functions.py) instead of scraping the public URL. The answer here comes
from the recorder's state: the serving Function must belong to a deployed app (else
NOT_FOUND, as Modal answers an unknown id), its containers are the app's running ones,
and inputs are those a test declares. ``WAKING_RPCS`` lists every call that would send
an input or change scaling (and so start a container) on Modal: the view must make none.

Time-range stats and metrics (``modal_api_time_range``) and billing (``modal_api_billing``)
are mixed in here, over one ``UsageBook`` (``modal_api_usage``): a test sets the clock,
starts containers at given times, declares finished inputs and a Server's engine figures,
and may refuse billing, through the methods below.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from google.protobuf.message import Message
from grpclib import GRPCError, Status
from modal_proto import api_pb2

from .modal_api_billing import BillingHandlers
from .modal_api_state import ModalState
from .modal_api_time_range import TimeRangeHandlers
from .modal_api_usage import InferenceFigures, InputEvent, UsageBook

# RPCs that carry an input to a Function, or change its scaling: on Modal each can start a container.
WAKING_RPCS = frozenset(
    {
        "AttemptStart",
        "AttemptRetry",
        "FunctionMap",
        "FunctionPutInputs",
        "FunctionRetryInputs",
        "MapStartOrContinue",
        "FunctionUpdateSchedulingParams",
        "ContainerExecPutInput",
    }
)


class StatsHandlers(TimeRangeHandlers, BillingHandlers):
    """Mixin answering FunctionGetCurrentStats from the deployed apps and their running containers,
    plus the time-range, metrics and billing RPCs of its two bases."""

    state: ModalState
    _lock: threading.RLock
    current_inputs: dict[str, tuple[int, int]]
    """Function id -> (running inputs, backlog) a test declares; absent: none."""

    def _add_container(self, app_name: str, environment: str = "") -> str:  # supplied by ContainerHandlers
        raise NotImplementedError

    # ---- what a test declares ------------------------------------------------------------
    def usage_book(self) -> UsageBook:
        """The recorder's usage notes (created on first use)."""
        book = self.__dict__.get("_usage_book")
        if book is None:
            book = self.__dict__["_usage_book"] = UsageBook()
        assert isinstance(book, UsageBook)
        return book

    def set_stats_clock(self, clock: Callable[[], float]) -> None:
        """What "now" is for stats, metrics and billing (default: ``time.time``)."""
        with self._lock:
            self.usage_book().clock = clock

    def start_container_at(self, app_name: str, started_at: float, finished_at: float = 0.0) -> str:
        """A container of the deployed app that started (and, if ``finished_at``, stopped) at given times."""
        with self._lock:
            task_id = self._add_container(app_name)
            container = self.state.containers[task_id]
            container.started_at = started_at
            container.finished_at = finished_at
            return task_id

    def record_inputs(
        self, app_name: str, count: int, at: float, *, outcome: str = "success", execution_s: float = 1.0
    ) -> None:
        """``count`` inputs (requests) of the deployed app that finished at ``at``."""
        if outcome not in ("success", "failure", "timeout"):
            raise ValueError(f"outcome {outcome!r}: use success, failure or timeout")
        with self._lock:
            app = self.state.app_by_name(app_name, "")
            if app is None:
                raise KeyError(f"no deployed app named {app_name!r}")
            self.usage_book().inputs.append(InputEvent(app.app_id, at, outcome, count, execution_s))

    def declare_inference(self, app_name: str, figures: InferenceFigures) -> None:
        """The engine figures a Modal Server of ``app_name`` reports (ServerGetTimeRangeStats ``inference``)."""
        with self._lock:
            app = self.state.app_by_name(app_name, "")
            if app is None:
                raise KeyError(f"no deployed app named {app_name!r}")
            self.usage_book().inference[app.app_id] = figures

    def refuse_billing(
        self,
        status: Status = Status.PERMISSION_DENIED,
        message: str = "Billing data is not available to this token (workspace role or plan)",
    ) -> None:
        """Answer every billing RPC with ``status``: a workspace without billing access."""
        with self._lock:
            self.usage_book().billing_refusal = (status, message)

    def set_gpu_rate(self, gpu_type: str, dollars_per_second: float) -> None:
        """Modal's per-second price of one GPU type (default: modal_api_usage.GPU_RATES_PER_SECOND)."""
        with self._lock:
            self.usage_book().gpu_rates[gpu_type] = dollars_per_second

    def rpc_FunctionGetCurrentStats(
        self, req: api_pb2.FunctionGetCurrentStatsRequest, meta: Mapping[str, str]
    ) -> Message:
        app_id = next(
            (
                app.app_id
                for app in self.state.apps.values()
                if app.state == api_pb2.APP_STATE_DEPLOYED
                and any(req.function_id in d.functions for d in app.deployments)
            ),
            None,
        )
        if app_id is None:
            raise GRPCError(Status.NOT_FOUND, f"Function '{req.function_id}' not found")
        containers = sum(1 for c in self.state.containers.values() if c.app_id == app_id and not c.finished_at)
        running, backlog = getattr(self, "current_inputs", {}).get(req.function_id, (0, 0))
        return api_pb2.FunctionStats(backlog=backlog, num_total_tasks=containers, num_running_inputs=running)
