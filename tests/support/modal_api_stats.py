"""Modal's live stats for the loopback API: ``FunctionGetCurrentStats``, and a count of what would wake a container.

Why: the fleet view reads Modal's own counts (``Function.get_current_stats()``, modal
1.6.4 modal/_functions.py) instead of scraping the public URL. The answer here comes
from the recorder's state: the serving Function must belong to a deployed app (else
NOT_FOUND, as Modal answers an unknown id), its containers are the app's running ones,
and inputs are those a test declares. ``waking_calls`` lists every call that would send
an input or change scaling (and so start a container) on Modal: the view must make none.
"""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf.message import Message
from grpclib import GRPCError, Status
from modal_proto import api_pb2

from .modal_api_state import ModalState

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


class StatsHandlers:
    """Mixin answering FunctionGetCurrentStats from the deployed apps and their running containers."""

    state: ModalState
    current_inputs: dict[str, tuple[int, int]]
    """Function id -> (running inputs, backlog) a test declares; absent: none."""

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
