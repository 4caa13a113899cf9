"""Modal Dict RPCs for the loopback recorder: an in-memory key-value store.

Why: fleet state lives in a ``modal.Dict``; serving it from the recorder lets tests run
several client processes (deploy, then status, then rollback) that share that state for as
long as the recorder lives, exactly as they would share it through Modal.
Keys and values stay in the client's serialized form (bytes), as Modal stores them.
"""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf import empty_pb2
from google.protobuf.message import Message
from grpclib import GRPCError, Status
from modal_proto import api_pb2

from .modal_api_state import ModalState, new_object_id

_CREATE = (
    api_pb2.OBJECT_CREATION_TYPE_CREATE_IF_MISSING,
    api_pb2.OBJECT_CREATION_TYPE_CREATE_FAIL_IF_EXISTS,
    api_pb2.OBJECT_CREATION_TYPE_CREATE_OVERWRITE_IF_EXISTS,
)


class DictHandlers:
    """Mixin answering DictGetOrCreate/Update/Get/Contains/Len/Pop/Clear/Contents/Delete/Heartbeat."""

    state: ModalState

    def _dict(self, dict_id: str) -> dict[bytes, bytes]:
        if dict_id not in self.state.dicts:
            raise GRPCError(Status.NOT_FOUND, f"Dict '{dict_id}' not found")
        return self.state.dicts[dict_id]

    def rpc_DictGetOrCreate(self, req: api_pb2.DictGetOrCreateRequest, meta: Mapping[str, str]) -> Message:
        env = self.state.env_name(req.environment_name)
        ephemeral = req.object_creation_type == api_pb2.OBJECT_CREATION_TYPE_EPHEMERAL
        key = (env, req.deployment_name)
        if ephemeral or key not in self.state.dict_ids:
            if not ephemeral and req.object_creation_type not in _CREATE:
                raise GRPCError(Status.NOT_FOUND, f"Dict '{req.deployment_name}' not found in environment '{env}'")
            dict_id = new_object_id("di")
            self.state.dicts[dict_id] = {}
            if not ephemeral:
                self.state.dict_ids[key] = dict_id
        elif req.object_creation_type == api_pb2.OBJECT_CREATION_TYPE_CREATE_FAIL_IF_EXISTS:
            raise GRPCError(Status.ALREADY_EXISTS, f"Dict '{req.deployment_name}' already exists")
        else:
            dict_id = self.state.dict_ids[key]
        self.state.dicts[dict_id].update({e.key: e.value for e in req.data})
        return api_pb2.DictGetOrCreateResponse(dict_id=dict_id, metadata=api_pb2.DictMetadata(name=req.deployment_name))

    def rpc_DictDelete(self, req: api_pb2.DictDeleteRequest, meta: Mapping[str, str]) -> Message:
        self._dict(req.dict_id)
        del self.state.dicts[req.dict_id]
        self.state.dict_ids = {k: v for k, v in self.state.dict_ids.items() if v != req.dict_id}
        return empty_pb2.Empty()

    def rpc_DictHeartbeat(self, req: Message, meta: Mapping[str, str]) -> Message:
        return empty_pb2.Empty()

    def rpc_DictUpdate(self, req: api_pb2.DictUpdateRequest, meta: Mapping[str, str]) -> Message:
        data = self._dict(req.dict_id)
        if req.if_not_exists and any(e.key in data for e in req.updates):
            return api_pb2.DictUpdateResponse(created=False)
        data.update({e.key: e.value for e in req.updates})
        return api_pb2.DictUpdateResponse(created=True)

    def rpc_DictGet(self, req: api_pb2.DictGetRequest, meta: Mapping[str, str]) -> Message:
        data = self._dict(req.dict_id)
        if req.key not in data:
            return api_pb2.DictGetResponse(found=False)
        return api_pb2.DictGetResponse(found=True, value=data[req.key])

    def rpc_DictContains(self, req: api_pb2.DictContainsRequest, meta: Mapping[str, str]) -> Message:
        return api_pb2.DictContainsResponse(found=req.key in self._dict(req.dict_id))

    def rpc_DictLen(self, req: api_pb2.DictLenRequest, meta: Mapping[str, str]) -> Message:
        return api_pb2.DictLenResponse(len=len(self._dict(req.dict_id)))

    def rpc_DictPop(self, req: api_pb2.DictPopRequest, meta: Mapping[str, str]) -> Message:
        data = self._dict(req.dict_id)
        if req.key not in data:
            return api_pb2.DictPopResponse(found=False)
        return api_pb2.DictPopResponse(found=True, value=data.pop(req.key))

    def rpc_DictClear(self, req: api_pb2.DictClearRequest, meta: Mapping[str, str]) -> Message:
        self._dict(req.dict_id).clear()
        return empty_pb2.Empty()

    def rpc_DictContents(self, req: api_pb2.DictContentsRequest, meta: Mapping[str, str]) -> list[Message]:
        return [
            api_pb2.DictEntry(key=k if req.keys else b"", value=v if req.values else b"")
            for k, v in self._dict(req.dict_id).items()
        ]
