"""Answers for the Modal RPCs that the real client (modal==1.6.4) makes in our tests.

Why hand-written answers: the only way to see exactly what ``modal deploy`` would send to
Modal (ranked GPUs, autoscaler settings, snapshot flags, proxy auth) without Modal's cloud
is to let the real client talk to a fake control plane. Each ``rpc_<Name>`` method below
takes the decoded request and returns the response message (or a list of messages for
server-streaming RPCs). RPCs without a method here are answered UNIMPLEMENTED and recorded
by the server in ``modal_api`` so gaps are visible.

All handlers run on the recorder's event loop thread while holding the recorder lock.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from google.protobuf import empty_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from grpclib import GRPCError, Status
from modal_proto import api_pb2

from .modal_api_containers import ContainerHandlers
from .modal_api_dicts import DictHandlers
from .modal_api_state import ModalState, new_object_id
from .modal_api_stats import StatsHandlers
from .modal_api_tokens import ProxyTokenHandlers
from .modal_api_versions import AppVersionHandlers

_CREATE = (
    api_pb2.OBJECT_CREATION_TYPE_CREATE_IF_MISSING,
    api_pb2.OBJECT_CREATION_TYPE_CREATE_FAIL_IF_EXISTS,
    api_pb2.OBJECT_CREATION_TYPE_CREATE_OVERWRITE_IF_EXISTS,
)
_SUCCESS = api_pb2.GenericResult(status=api_pb2.GenericResult.GENERIC_STATUS_SUCCESS)
_IMAGE_METADATA = api_pb2.ImageMetadata(
    python_version_info="Python 3.11.9 (main) [GCC 12.2.0]",
    libc_version_info="glibc 2.36",
    workdir="/root",
)


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _function_data_from(fn: api_pb2.Function) -> api_pb2.FunctionData:
    """The ``FunctionData`` form of a single-GPU ``Function`` (shared fields + one ranked entry)."""
    data = api_pb2.FunctionData()
    data_fields = api_pb2.FunctionData.DESCRIPTOR.fields_by_name
    for field, value in fn.ListFields():
        target = data_fields.get(field.name)
        if target is None or target.type != field.type:
            continue
        if _is_map(target) and _is_map(field):
            if target.message_type.fields_by_name["value"].message_type is None:
                getattr(data, field.name).update(value)
            else:
                for key, item in value.items():
                    getattr(data, field.name)[key].CopyFrom(item)
        elif target.message_type != field.message_type:
            continue
        elif target.is_repeated:
            getattr(data, field.name).extend(value)
        elif target.message_type is not None:
            getattr(data, field.name).CopyFrom(value)
        else:
            setattr(data, field.name, value)
    data.ranked_functions.add(rank=0, function=fn)
    return data


def _check_server(definition: api_pb2.FunctionData) -> None:
    """Refuse a Server definition Modal would refuse: no port or routing region, web or method
    parts (a Server only forwards its port), a grace period over the hour (modal 1.6.4
    ``_server.py``, ``validate_http_server_config``: the client checks the same before sending)."""
    http = definition.http_config
    problems = []
    if not 1 <= http.port <= 65535:
        problems.append(f"port {http.port}")
    if not http.proxy_regions or not http.proxy_regions[0]:
        problems.append("no routing region")
    if http.exit_grace_period > 3600:
        problems.append(f"exit_grace_period {http.exit_grace_period} > 3600")
    if definition.webhook_config.type or definition.method_definitions:
        problems.append("a Server has no web endpoint or methods of its own")
    if problems:
        raise GRPCError(Status.INVALID_ARGUMENT, f"invalid Server {definition.function_name}: {'; '.join(problems)}")


def _not_found(kind: str, name: str, env: str) -> GRPCError:
    """NOT_FOUND as Modal words a failed lookup by name (the client raises it as NotFoundError,
    modal/_grpc_client.py); the same shape the client itself uses, modal/cli/endpoint.py."""
    return GRPCError(Status.NOT_FOUND, f"{kind} '{name}' not found in environment '{env}'")


class ModalApiHandlers(AppVersionHandlers, DictHandlers, ContainerHandlers, ProxyTokenHandlers, StatsHandlers):
    """Mixin with the per-RPC logic; the server class in ``modal_api`` supplies the plumbing."""

    state: ModalState
    function_create_failures: list[tuple[str, Status, str]]

    # ---- client, environment -------------------------------------------------------------
    def rpc_ClientHello(self, req: Message, meta: Mapping[str, str]) -> Message:
        return api_pb2.ClientHelloResponse(image_builder_version=self.state.image_builder_version)

    def rpc_EnvironmentGetOrCreate(
        self, req: api_pb2.EnvironmentGetOrCreateRequest, meta: Mapping[str, str]
    ) -> Message:
        settings = api_pb2.EnvironmentSettings(
            image_builder_version=self.state.image_builder_version, webhook_suffix="modal.run"
        )
        return api_pb2.EnvironmentGetOrCreateResponse(
            environment_id="en-" + self.state.env_name(req.deployment_name),
            metadata=api_pb2.EnvironmentMetadata(name=self.state.env_name(req.deployment_name), settings=settings),
        )

    # ---- apps ----------------------------------------------------------------------------
    def rpc_AppCreate(self, req: api_pb2.AppCreateRequest, meta: Mapping[str, str]) -> Message:
        app = self.state.new_app(req.description, req.environment_name, req.app_state or api_pb2.APP_STATE_EPHEMERAL)
        return api_pb2.AppCreateResponse(
            app_id=app.app_id,
            app_page_url=f"https://modal.com/apps/{self.state.workspace}/{app.environment}/{app.app_id}",
            app_logs_url=f"https://modal.com/logs/{app.app_id}",
        )

    def rpc_AppGetByDeploymentName(
        self, req: api_pb2.AppGetByDeploymentNameRequest, meta: Mapping[str, str]
    ) -> Message:
        env = self.state.env_name(req.environment_name)
        resp = api_pb2.AppGetByDeploymentNameResponse(environment_name=env)
        app = self.state.app_by_name(req.name, env)
        if app is not None:
            if app.state == api_pb2.APP_STATE_DEPLOYED:
                resp.app_id = app.app_id
            else:
                resp.previous_app_id = app.app_id
            resp.lifecycle.CopyFrom(app.lifecycle())
        return resp

    def rpc_AppGetLifecycle(self, req: api_pb2.AppGetLifecycleRequest, meta: Mapping[str, str]) -> Message:
        return api_pb2.AppGetLifecycleResponse(lifecycle=self._app(req.app_id).lifecycle())

    def rpc_AppLookup(self, req: api_pb2.AppLookupRequest, meta: Mapping[str, str]) -> Message:
        app = self.state.app_by_name(req.app_name, req.environment_name)
        if app is None or app.state != api_pb2.APP_STATE_DEPLOYED:
            raise _not_found("App", req.app_name, self.state.env_name(req.environment_name))
        return api_pb2.AppLookupResponse(app_id=app.app_id)

    def rpc_AppGetLayout(self, req: api_pb2.AppGetLayoutRequest, meta: Mapping[str, str]) -> Message:
        app = self._app(req.app_id)
        layout = api_pb2.AppLayout(function_ids=app.function_ids, class_ids=app.class_ids)
        for fid in app.function_ids.values():
            if fid in self.state.function_metadata:
                layout.objects.add(object_id=fid, function_handle_metadata=self.state.function_metadata[fid])
        for cid in app.class_ids.values():
            if cid in self.state.class_metadata:
                layout.objects.add(object_id=cid, class_handle_metadata=self.state.class_metadata[cid])
        return api_pb2.AppGetLayoutResponse(app_layout=layout)

    def rpc_AppHeartbeat(self, req: Message, meta: Mapping[str, str]) -> Message:
        return empty_pb2.Empty()

    def rpc_AppClientDisconnect(self, req: api_pb2.AppClientDisconnectRequest, meta: Mapping[str, str]) -> Message:
        app = self.state.apps.get(req.app_id)
        if app is not None and app.state in (api_pb2.APP_STATE_INITIALIZING, api_pb2.APP_STATE_EPHEMERAL):
            app.state, app.stopped_at = api_pb2.APP_STATE_STOPPED, time.time()
        return empty_pb2.Empty()

    def rpc_AppList(self, req: api_pb2.AppListRequest, meta: Mapping[str, str]) -> Message:
        env = self.state.env_name(req.environment_name)
        resp = api_pb2.AppListResponse()
        for app in self.state.apps.values():
            if app.environment == env:
                resp.apps.add(
                    app_id=app.app_id,
                    description=app.name or app.description,
                    name=app.name,
                    state=app.state,  # type: ignore[arg-type]
                    created_at=app.created_at,
                    stopped_at=app.stopped_at,
                )
        return resp

    def rpc_AppStop(self, req: api_pb2.AppStopRequest, meta: Mapping[str, str]) -> Message:
        app = self._app(req.app_id)
        app.state, app.stopped_at = api_pb2.APP_STATE_STOPPED, time.time()
        return empty_pb2.Empty()

    # ---- functions and classes -----------------------------------------------------------
    def rpc_FunctionPrecreate(self, req: api_pb2.FunctionPrecreateRequest, meta: Mapping[str, str]) -> Message:
        function_id = req.existing_function_id or new_object_id("fu")
        handle = api_pb2.FunctionHandleMetadata(
            function_name=req.function_name,
            function_type=req.function_type,
            function_schema=req.function_schema,
            app_id=req.app_id,
        )
        return api_pb2.FunctionPrecreateResponse(function_id=function_id, handle_metadata=handle)

    def _fill_web_urls(self, fn: api_pb2.Function | api_pb2.FunctionData, app_name: str) -> str:
        """Give web endpoints the URL Modal would assign; returns the function's own URL."""
        for name, method in fn.method_definitions.items():
            if method.webhook_config.type:
                method.web_url = self.state.web_url(app_name, f"{fn.function_name.removesuffix('.*')}-{name}")
        if fn.webhook_config.type:
            fn.web_url = self.state.web_url(app_name, fn.function_name)
        return fn.web_url

    def rpc_FunctionCreate(self, req: api_pb2.FunctionCreateRequest, meta: Mapping[str, str]) -> Message:
        app = self._app(req.app_id)
        app_name = app.name or app.description
        for substring, status, message in self.function_create_failures:
            if substring in app_name:
                raise GRPCError(status, message)
        function_id = req.existing_function_id or new_object_id("fu")
        resp = api_pb2.FunctionCreateResponse(function_id=function_id)
        # Modal always answers with `function_data` (the client parses FunctionInfo from it) and
        # also fills `function`, from which the CLI prints web URLs.
        if req.HasField("function_data"):
            resp.function_data.CopyFrom(req.function_data)
            resp.function.CopyFrom(req.function_data.ranked_functions[0].function)
        else:
            resp.function.CopyFrom(req.function)
            resp.function_data.CopyFrom(_function_data_from(req.function))
        self._fill_web_urls(resp.function, app_name)
        web_url = self._fill_web_urls(resp.function_data, app_name)
        source = resp.function_data
        handle = resp.handle_metadata
        if source.is_server:
            _check_server(source)
            # A Server's URL is not a web_url: the client reads it from the handle metadata
            # (modal/_functions.py `_experimental_get_flash_urls`; modal/_server.py `get_url`).
            region = source.http_config.proxy_regions[0]
            handle._experimental_flash_urls.append(self.state.server_url(app_name, source.function_name, region))
        handle.function_name = source.function_name
        handle.function_type = source.function_type
        handle.web_url = web_url
        handle.is_method = source.is_method
        handle.definition_id = new_object_id("de")
        handle.class_parameter_info.CopyFrom(source.class_parameter_info)
        handle.function_schema.CopyFrom(source.function_schema)
        handle.app_id = req.app_id
        for name, method in source.method_definitions.items():
            handle.method_handle_metadata[name].CopyFrom(
                api_pb2.FunctionHandleMetadata(
                    function_name=method.function_name,
                    function_type=method.function_type,
                    web_url=method.web_url,
                    is_method=True,
                    use_method_name=name,
                    function_schema=method.function_schema,
                )
            )
        self.state.function_metadata[function_id] = handle
        self.state.function_data[function_id] = resp.function_data
        return resp

    def rpc_ClassCreate(self, req: api_pb2.ClassCreateRequest, meta: Mapping[str, str]) -> Message:
        class_id = req.existing_class_id or new_object_id("cs")
        handle = api_pb2.ClassHandleMetadata(methods=req.methods)
        self.state.class_metadata[class_id] = handle
        return api_pb2.ClassCreateResponse(class_id=class_id, handle_metadata=handle)

    # ---- images and mounts ---------------------------------------------------------------
    def rpc_ImageGetOrCreate(self, req: api_pb2.ImageGetOrCreateRequest, meta: Mapping[str, str]) -> Message:
        # No `result`: the client then waits on ImageJoinStreaming, like after a real build.
        return api_pb2.ImageGetOrCreateResponse(image_id=req.existing_image_id or new_object_id("im"))

    def rpc_ImageJoinStreaming(self, req: api_pb2.ImageJoinStreamingRequest, meta: Mapping[str, str]) -> list[Message]:
        return [api_pb2.ImageJoinStreamingResponse(result=_SUCCESS, metadata=_IMAGE_METADATA, eof=True)]

    def rpc_MountGetOrCreate(self, req: api_pb2.MountGetOrCreateRequest, meta: Mapping[str, str]) -> Message:
        mount_id = new_object_id("mo")
        self.state.mount_files[mount_id] = [(f.filename, f.sha256_hex) for f in req.files]
        return api_pb2.MountGetOrCreateResponse(mount_id=mount_id, handle_metadata=api_pb2.MountHandleMetadata())

    def rpc_MountBatchedCheckExistence(
        self, req: api_pb2.MountBatchedCheckExistenceRequest, meta: Mapping[str, str]
    ) -> Message:
        missing = [h for h in req.sha256_hex_hashes if h not in self.state.blobs]
        resp = api_pb2.MountBatchedCheckExistenceResponse(missing_sha256_hex_hashes=missing)
        resp.checked_at.GetCurrentTime()
        return resp

    def rpc_MountPutFile(self, req: api_pb2.MountPutFileRequest, meta: Mapping[str, str]) -> Message:
        # An empty file arrives as an empty `data` (set in the oneof); treating it as "no
        # content" would make the client re-send it forever.
        if req.WhichOneof("data_oneof") is not None:
            self.state.blobs[req.sha256_hex] = req.data
        return api_pb2.MountPutFileResponse(exists=req.sha256_hex in self.state.blobs)

    # ---- volumes, secrets -----------------------------------------------------------------
    def rpc_VolumeGetOrCreate(self, req: api_pb2.VolumeGetOrCreateRequest, meta: Mapping[str, str]) -> Message:
        env = self.state.env_name(req.environment_name)
        key = (env, req.deployment_name)
        if key not in self.state.volumes:
            # `Volume.from_name(name)` without create_if_missing sends UNSPECIFIED: on Modal a
            # missing volume is NOT_FOUND then (modal/volume.py, `_Volume.from_name`).
            if req.object_creation_type not in _CREATE and self.state.strict_lookups:
                raise _not_found("Volume", req.deployment_name, env)
            version = req.version or api_pb2.VOLUME_FS_VERSION_V1
            self.state.volumes[key] = (new_object_id("vo"), version)
        elif req.object_creation_type == api_pb2.OBJECT_CREATION_TYPE_CREATE_FAIL_IF_EXISTS:
            raise GRPCError(Status.ALREADY_EXISTS, f"Volume '{req.deployment_name}' already exists")
        volume_id, fs_version = self.state.volumes[key]
        return api_pb2.VolumeGetOrCreateResponse(
            volume_id=volume_id,
            version=fs_version,  # type: ignore[arg-type]
            metadata=api_pb2.VolumeMetadata(version=fs_version, name=req.deployment_name),  # type: ignore[arg-type]
        )

    def rpc_VolumeHeartbeat(self, req: Message, meta: Mapping[str, str]) -> Message:
        return empty_pb2.Empty()

    def rpc_SecretGetOrCreate(self, req: api_pb2.SecretGetOrCreateRequest, meta: Mapping[str, str]) -> Message:
        env = self.state.env_name(req.environment_name)
        name = req.deployment_name
        if not name or req.object_creation_type == api_pb2.OBJECT_CREATION_TYPE_ANONYMOUS_OWNED_BY_APP:
            secret_id, values = new_object_id("st"), dict(req.env_dict)  # Secret.from_dict
        elif (env, name) in self.state.secrets and req.object_creation_type not in _CREATE[1:]:
            secret_id, values = self.state.secrets[(env, name)]
        elif req.object_creation_type in _CREATE or not self.state.strict_lookups:
            secret_id, values = new_object_id("st"), dict(req.env_dict)
            self.state.secrets[(env, name)] = (secret_id, values)
        else:
            raise _not_found("Secret", name, env)
        # `Secret.from_name(name, required_keys=[...])`: "the server asserts these keys exist
        # on the Secret" (modal/secret.py, `_Secret.from_name` docstring).
        missing = [k for k in req.required_keys if k not in values]
        if missing and self.state.strict_lookups:
            raise GRPCError(Status.NOT_FOUND, f"Secret '{name}' is missing required keys: {', '.join(missing)}")
        meta_msg = api_pb2.SecretMetadata(name=name, keys=sorted(values), environment_name=env)
        return api_pb2.SecretGetOrCreateResponse(secret_id=secret_id, metadata=meta_msg)
