"""App versions for the loopback recorder: publish, history, rollback, and lookups by name.

Why: the fleet's rollback and its state bookkeeping depend on how Modal versions an app,
so the fake keeps versions the way Modal shows them (checked against modal 1.6.4):
- every ``modal deploy`` of a named app publishes version v1, v2, ... (``AppPublish``);
- ``modal app rollback APP [vN]`` is itself a new version whose definition is vN's
  ("Rollbacks will appear as a new deployment in the App history, although the App state
  will be reset to the state at the time of the previous deployment": the command's
  docstring, modal/cli/app.py). Without a version the CLI sends ``version=-1``
  (modal/cli/app.py, ``rollback``); its help calls that "Rollback an App to its previous
  version". Modal's server is not public: the fake reads -1 as the live version minus one;
- the history row of a rollback carries ``rollback_version`` (modal_proto
  ``AppDeploymentHistory``), which ``modal app history --json`` does not print;
- ``FunctionGet`` / ``ClassGet`` resolve to the live version's definition (or a pinned
  ``app_version``), so after a rollback a lookup meets the restored definition.
The strategy (``rolling`` / ``recreate``) is not part of ``AppRollbackRequest``: the client
applies ``recreate`` itself after the RPC (see ``modal_api_containers``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from google.protobuf.message import Message
from grpclib import GRPCError, Status
from modal_proto import api_pb2

from .modal_api_state import AppRecord, Deployment, ModalState


def _app_not_found(name: str, env: str) -> GRPCError:
    return GRPCError(Status.NOT_FOUND, f"App '{name}' not found in environment '{env}'")


class AppVersionHandlers:
    """Mixin answering AppPublish, AppDeploymentHistory, AppRollback, FunctionGet and ClassGet."""

    state: ModalState

    def _app(self, app_id: str) -> AppRecord:
        app = self.state.apps.get(app_id)
        if app is None:
            raise GRPCError(Status.NOT_FOUND, f"App '{app_id}' not found")
        return app

    def _definitions(self, function_ids: Mapping[str, str], class_ids: Mapping[str, str]) -> Deployment:
        """The definitions the ids name right now, to be kept with a new version."""
        functions = {
            fid: (self.state.function_metadata[fid], self.state.function_data[fid])
            for fid in function_ids.values()
            if fid in self.state.function_metadata
        }
        classes = {
            cid: self.state.class_metadata[cid] for cid in class_ids.values() if cid in self.state.class_metadata
        }
        return Deployment(0, "", "", 0.0, "", functions=functions, classes=classes)

    def _deploy(self, app: AppRecord, deployment: Deployment, name: str) -> api_pb2.AppPublishResponse:
        """Make ``deployment`` the live version of ``app`` under ``name`` (publish or rollback)."""
        app.deployments.append(deployment)
        app.name, app.state, app.stopped_at = name, api_pb2.APP_STATE_DEPLOYED, 0.0
        app.function_ids, app.class_ids = dict(deployment.function_ids), dict(deployment.class_ids)
        # The live definitions are the version's (a rollback restores the older ones).
        for fid, (handle, data) in deployment.functions.items():
            self.state.function_metadata[fid], self.state.function_data[fid] = handle, data
        self.state.class_metadata.update(deployment.classes)
        previous = self.state.app_by_name(name, app.environment)
        if previous is not None and previous.app_id != app.app_id and previous.state == api_pb2.APP_STATE_DEPLOYED:
            previous.state, previous.stopped_at = api_pb2.APP_STATE_STOPPED, time.time()
        self.state.deployed_names[(app.environment, name)] = app.app_id
        return api_pb2.AppPublishResponse(url=self.state.app_url(app), deployed_at=deployment.deployed_at)

    def rpc_AppPublish(self, req: api_pb2.AppPublishRequest, meta: Mapping[str, str]) -> Message:
        app = self._app(req.app_id)
        if req.app_state != api_pb2.APP_STATE_DEPLOYED:  # `modal run` / `serve`: no history entry
            app.state = req.app_state
            app.function_ids, app.class_ids = dict(req.function_ids), dict(req.class_ids)
            return api_pb2.AppPublishResponse(url=self.state.app_url(app))
        kept = self._definitions(req.function_ids, req.class_ids)
        deployment = Deployment(
            version=app.version + 1,
            tag=req.deployment_tag,
            commit_hash=req.commit_info.commit_hash,
            deployed_at=time.time(),
            client_version=meta.get("x-modal-client-version", ""),
            function_ids=tuple(sorted(req.function_ids.items())),
            class_ids=tuple(sorted(req.class_ids.items())),
            functions=kept.functions,
            classes=kept.classes,
        )
        return self._deploy(app, deployment, req.name or app.description)

    def rpc_AppDeploymentHistory(self, req: api_pb2.AppDeploymentHistoryRequest, meta: Mapping[str, str]) -> Message:
        app = self._app(req.app_id)
        resp = api_pb2.AppDeploymentHistoryResponse(production_app_version=app.version)
        for d in reversed(app.deployments):
            resp.app_deployment_histories.add(
                app_id=app.app_id,
                version=d.version,
                client_version=d.client_version,
                deployed_at=d.deployed_at,
                deployed_by="test-user",
                tag=d.tag,
                rollback_version=d.rollback_version,
                rollback_allowed=d.version != app.version,
                commit_info=api_pb2.CommitInfo(vcs="git", commit_hash=d.commit_hash) if d.commit_hash else None,
            )
        return resp

    def rpc_AppRollback(self, req: api_pb2.AppRollbackRequest, meta: Mapping[str, str]) -> Message:
        app = self._app(req.app_id)
        if app.state != api_pb2.APP_STATE_DEPLOYED:
            raise GRPCError(Status.FAILED_PRECONDITION, f"App '{app.name}' is not deployed")
        target_version = app.version - 1 if req.version < 0 else req.version
        target = next((d for d in app.deployments if d.version == target_version), None)
        if target is None or target_version == app.version:
            raise GRPCError(Status.NOT_FOUND, f"No version v{target_version} to roll back to for app '{app.name}'")
        deployment = Deployment(
            version=app.version + 1,
            tag=target.tag,
            commit_hash=target.commit_hash,
            deployed_at=time.time(),
            client_version=meta.get("x-modal-client-version", ""),
            rollback_version=target.version,
            function_ids=target.function_ids,
            class_ids=target.class_ids,
            functions=target.functions,
            classes=target.classes,
        )
        pub = self._deploy(app, deployment, app.name)
        return api_pb2.AppRollbackResponse(url=pub.url, deployed_at=pub.deployed_at)

    def _serving(self, app_name: str, env: str, version: int) -> Deployment:
        """The deployment a lookup by name meets: the live version, or ``version`` when pinned."""
        app = self.state.app_by_name(app_name, env)
        if app is None or app.state != api_pb2.APP_STATE_DEPLOYED or not app.deployments:
            raise _app_not_found(app_name, self.state.env_name(env))
        wanted = version or app.version
        deployment = next((d for d in app.deployments if d.version == wanted), None)
        if deployment is None:
            raise GRPCError(Status.NOT_FOUND, f"App '{app_name}' has no version v{wanted}")
        return deployment

    def rpc_FunctionGet(self, req: api_pb2.FunctionGetRequest, meta: Mapping[str, str]) -> Message:
        deployment = self._serving(req.app_name, req.environment_name, req.app_version)
        function_id = dict(deployment.function_ids).get(req.object_tag)
        if function_id is None or function_id not in deployment.functions:
            raise GRPCError(Status.NOT_FOUND, f"Function '{req.object_tag}' not found in app '{req.app_name}'")
        handle, data = deployment.functions[function_id]
        return api_pb2.FunctionGetResponse(function_id=function_id, handle_metadata=handle, function=data)

    def rpc_ClassGet(self, req: api_pb2.ClassGetRequest, meta: Mapping[str, str]) -> Message:
        deployment = self._serving(req.app_name, req.environment_name, req.app_version)
        class_id = dict(deployment.class_ids).get(req.object_tag)
        if class_id is None or class_id not in deployment.classes:
            raise GRPCError(Status.NOT_FOUND, f"Class '{req.object_tag}' not found in app '{req.app_name}'")
        return api_pb2.ClassGetResponse(class_id=class_id, handle_metadata=deployment.classes[class_id])
