"""Running containers for the loopback recorder: ``modal container list`` / ``stop``.

Why: the snapshot job forces cold starts by stopping a model's containers, and
``ModalTarget.stop_containers`` does it with the real CLI (``TaskList``, then
``TaskGetInfo`` + ``ContainerStop`` per container). ``--strategy recreate`` on
``modal deploy`` / ``modal app rollback`` is the client's own doing too: after the new
version is live it lists the app's tasks enqueued before it and stops them, polling
until none is left (modal/runner.py, ``_stop_and_wait_for_containers``); the server
receives no strategy. ``rolling`` sends nothing, so old containers keep running here
(on Modal they drain). The recorder cannot run
containers, so a test starts pretend ones for a deployed app (``start_container``)
and then sees which the client stopped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from google.protobuf.message import Message
from grpclib import GRPCError, Status
from modal_proto import api_pb2

from .modal_api_state import ContainerRecord, ModalState, new_object_id


class ContainerHandlers:
    """Mixin answering TaskList, TaskGetInfo and ContainerStop from ``state.containers``."""

    state: ModalState

    def _add_container(self, app_name: str, environment: str = "") -> str:
        """Register a running container of deployed app ``app_name``; returns its task id (``ta-...``)."""
        app = self.state.app_by_name(app_name, environment)
        if app is None or app.state != api_pb2.APP_STATE_DEPLOYED:
            raise KeyError(f"no deployed app named {app_name!r}")
        task_id = new_object_id("ta")
        self.state.containers[task_id] = ContainerRecord(
            task_id=task_id, app_id=app.app_id, started_at=time.time(), version=app.version
        )
        return task_id

    def rpc_TaskList(self, req: api_pb2.TaskListRequest, meta: Mapping[str, str]) -> Message:
        env = self.state.env_name(req.environment_name)
        resp = api_pb2.TaskListResponse()
        for task in self.state.containers.values():
            app = self.state.apps.get(task.app_id)
            if task.finished_at or app is None or app.environment != env:
                continue
            if req.app_id and req.app_id != task.app_id:
                continue
            resp.tasks.add(
                task_id=task.task_id,
                app_id=task.app_id,
                app_description=app.name or app.description,
                started_at=task.started_at,
                # `--strategy recreate` (deploy and rollback) stops the containers enqueued
                # before the new version's deployed_at: modal/runner.py,
                # `_stop_and_wait_for_containers`, filters TaskList on this field.
                enqueued_at=task.started_at,
            )
        return resp

    def rpc_TaskGetInfo(self, req: api_pb2.TaskGetInfoRequest, meta: Mapping[str, str]) -> Message:
        task = self.state.containers.get(req.task_id)
        if task is None:
            raise GRPCError(Status.NOT_FOUND, f"Container '{req.task_id}' not found")
        info = api_pb2.TaskInfo(id=task.task_id, started_at=task.started_at, finished_at=task.finished_at)
        return api_pb2.TaskGetInfoResponse(app_id=task.app_id, info=info)

    def rpc_ContainerStop(self, req: api_pb2.ContainerStopRequest, meta: Mapping[str, str]) -> Message:
        if self.state.container_stop_error:
            raise GRPCError(Status.FAILED_PRECONDITION, self.state.container_stop_error)
        task = self.state.containers.get(req.task_id)
        if task is None:
            raise GRPCError(Status.NOT_FOUND, f"Container '{req.task_id}' not found")
        task.finished_at = time.time()
        return api_pb2.ContainerStopResponse()
