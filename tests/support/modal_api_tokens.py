"""Proxy-auth token RPCs for the loopback recorder, answered as Modal answers them.

Why: ``fleet snapshot`` / ``fleet smoke`` mint a short-lived proxy token through the
real client (``modal.Workspace.from_context().proxy_tokens``: ``WorkspaceNameLookup``,
then ``WebhookTokenCreate``, ``EnvironmentGetOrCreate`` + ``WebhookTokenEnvironmentAdd``,
``WebhookTokenDelete``; modal/_workspace.py in modal 1.6.4), and the loopback web front
checks requests against the same tokens. What Modal does, and so what this does:

- ids ``wk-...``, secrets ``ws-...`` (modal/cli/workspace.py help text); the secret is in
  the create answer only ("The secret is only shown at creation time and cannot be
  retrieved later", ``proxy-tokens create``): only a digest is kept here;
- a token is workspace-wide until it is associated with environments; then it
  authenticates requests to those environments only ("On workspaces with RBAC enabled,
  tokens are scoped to specific environments; use the `allow` and `revoke` commands to
  manage environment associations", same file). Modelled: ``allow`` scopes the token;
- a deleted token stops working at once ("Any clients currently using the token will
  immediately lose access", ``delete`` docstring); unknown ids are NOT_FOUND.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from google.protobuf import empty_pb2
from google.protobuf.message import Message
from grpclib import GRPCError, Status
from modal_proto import api_pb2

from .modal_api_state import ModalState, new_object_id


@dataclass
class ProxyTokenRecord:
    """A proxy token as the server keeps it: never the secret, only its digest."""

    token_id: str
    secret_digest: bytes
    name: str
    created_at: float
    scoped: bool = False
    environments: set[str] = field(default_factory=set)

    def allows(self, environment: str) -> bool:
        """Whether the token authenticates requests to apps of ``environment``."""
        return not self.scoped or environment in self.environments


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class ProxyTokenHandlers:
    """Mixin answering the WebhookToken* RPCs and WorkspaceNameLookup; ``token_allows`` serves the front."""

    state: ModalState

    @property
    def proxy_tokens(self) -> dict[str, ProxyTokenRecord]:
        """Live tokens by id (created lazily: the recorder's ``__init__`` is not this mixin's)."""
        tokens: dict[str, ProxyTokenRecord] | None = self.__dict__.get("_proxy_tokens")
        if tokens is None:
            tokens = self.__dict__["_proxy_tokens"] = {}
        return tokens

    def token_allows(self, key: str, secret: str, environment: str) -> bool:
        """Whether (key, secret) is a live token that may call endpoints of ``environment``."""
        token = self.proxy_tokens.get(key)
        if token is None:
            return False
        return hmac.compare_digest(token.secret_digest, _digest(secret)) and token.allows(environment)

    def _token(self, token_id: str) -> ProxyTokenRecord:
        token = self.proxy_tokens.get(token_id)
        if token is None:
            raise GRPCError(Status.NOT_FOUND, f"Proxy token '{token_id}' not found")
        return token

    def _environment_of(self, environment_id: str) -> str:
        # EnvironmentGetOrCreate answers "en-<name>" here.
        if not environment_id.startswith("en-"):
            raise GRPCError(Status.NOT_FOUND, f"Environment '{environment_id}' not found")
        return environment_id.removeprefix("en-")

    def rpc_WorkspaceNameLookup(self, req: Message, meta: Mapping[str, str]) -> Message:
        return api_pb2.WorkspaceNameLookupResponse(workspace_name=self.state.workspace, username=self.state.workspace)

    def rpc_WebhookTokenCreate(self, req: api_pb2.WebhookTokenCreateRequest, meta: Mapping[str, str]) -> Message:
        token_id, secret = new_object_id("wk"), new_object_id("ws")
        self.proxy_tokens[token_id] = ProxyTokenRecord(
            token_id=token_id, secret_digest=_digest(secret), name=req.name, created_at=time.time(), scoped=req.scoped
        )
        return api_pb2.TokenCreateResponse(token_id=token_id, token_secret=secret)

    def _listed(self, tokens: list[ProxyTokenRecord]) -> api_pb2.WebhookTokenListResponse:
        resp = api_pb2.WebhookTokenListResponse()
        for token in sorted(tokens, key=lambda t: t.created_at):
            resp.tokens.add(
                token_id=token.token_id,
                created_at=token.created_at,
                scoped=token.scoped,
                name=token.name,
                created_by=api_pb2.UserIdentity(username="test-user"),
            )
        return resp

    def rpc_WebhookTokenList(self, req: Message, meta: Mapping[str, str]) -> Message:
        return self._listed(list(self.proxy_tokens.values()))

    def rpc_WebhookTokenListForEnvironment(
        self, req: api_pb2.WebhookTokenListForEnvironmentRequest, meta: Mapping[str, str]
    ) -> Message:
        env = self.state.env_name(req.environment_name)
        return self._listed([t for t in self.proxy_tokens.values() if env in t.environments])

    def rpc_WebhookTokenEnvironmentAdd(
        self, req: api_pb2.WebhookTokenEnvironmentAddRequest, meta: Mapping[str, str]
    ) -> Message:
        token = self._token(req.token_id)
        token.scoped = True
        token.environments.add(self._environment_of(req.environment_id))
        return empty_pb2.Empty()

    def rpc_WebhookTokenEnvironmentRemove(
        self, req: api_pb2.WebhookTokenEnvironmentRemoveRequest, meta: Mapping[str, str]
    ) -> Message:
        self._token(req.token_id).environments.discard(self._environment_of(req.environment_id))
        return empty_pb2.Empty()

    def rpc_WebhookTokenEnvironmentList(
        self, req: api_pb2.WebhookTokenEnvironmentListRequest, meta: Mapping[str, str]
    ) -> Message:
        token = self._token(req.token_id)
        return api_pb2.WebhookTokenEnvironmentListResponse(
            environment_ids=[f"en-{e}" for e in sorted(token.environments)]
        )

    def rpc_WebhookTokenUpdate(self, req: api_pb2.WebhookTokenUpdateRequest, meta: Mapping[str, str]) -> Message:
        token = self._token(req.token_id)
        token.name = req.name
        return api_pb2.WebhookToken(
            token_id=token.token_id, created_at=token.created_at, scoped=token.scoped, name=token.name
        )

    def rpc_WebhookTokenDelete(self, req: api_pb2.TokenDeleteRequest, meta: Mapping[str, str]) -> Message:
        self._token(req.token_id)
        del self.proxy_tokens[req.token_id]
        return empty_pb2.Empty()
