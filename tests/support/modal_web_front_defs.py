"""What a deployed endpoint serves, read from the recorder: the live version's definitions.

Why separate: the web front (``modal_web_front``) decides auth, snapshots and the
primitive from the definition FunctionCreate carried, per deployed version (a rollback
serves an older one): a classic web endpoint's ``webhook_config.requires_proxy_auth``,
or a Modal Server's ``http_config.unauthenticated`` (its URL is in the handle metadata,
``_experimental_flash_urls``); ``checkpointing_enabled`` and
``experimental_options["enable_gpu_snapshot"]`` for snapshots; a Server's
``max_concurrent_inputs`` for its 429s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modal_proto import api_pb2

if TYPE_CHECKING:
    from .modal_api import ModalApiRecorder

Definition = tuple[api_pb2.FunctionHandleMetadata | None, api_pb2.FunctionData]


@dataclass(frozen=True)
class Served:
    """How the endpoint at one URL is served, from its definition."""

    requires_auth: bool
    snapshot: str  # "gpu", "memory" or "none": what a restore of this definition brings back
    server: bool  # a Modal Server (port forwarded, 503 while no container runs) or the classic endpoint
    max_concurrency: int  # a Server's cap per container (0: none); above it Modal answers 429

    @property
    def snapshots(self) -> bool:
        """Whether Modal snapshots this definition at all."""
        return self.snapshot != "none"


def live_definitions(api: ModalApiRecorder, app_id: str) -> list[Definition]:
    """(handle, definition) of every function the app's live version serves (per version where kept)."""
    state = api.state
    app = state.apps[app_id]
    live = app.deployments[-1] if app.deployments else None
    per_version = getattr(live, "functions", None) or {}
    definitions: list[Definition] = []
    for function_id in app.function_ids.values():
        kept = per_version.get(function_id)
        if kept:
            definitions.append((kept[0], kept[1]))
        elif function_id in state.function_data:
            definitions.append((state.function_metadata.get(function_id), state.function_data[function_id]))
    return definitions


def served_at(definition: Definition, url: str) -> Served | None:
    """How ``definition`` serves the endpoint at ``url``; None when it does not serve that URL."""
    handle, data = definition
    snapshot = snapshot_kind(data)
    if data.is_server:
        if handle is None or url not in handle._experimental_flash_urls:
            return None
        cap = max((ranked.function.max_concurrent_inputs for ranked in data.ranked_functions), default=0)
        return Served(not data.http_config.unauthenticated, snapshot, True, cap)
    if data.web_url == url and data.webhook_config.type:
        return Served(bool(data.webhook_config.requires_proxy_auth), snapshot, False, 0)
    for method in data.method_definitions.values():
        if method.web_url == url and method.webhook_config.type:
            return Served(bool(method.webhook_config.requires_proxy_auth), snapshot, False, 0)
    return None


def snapshot_kind(data: api_pb2.FunctionData) -> str:
    """``enable_memory_snapshot`` (``checkpointing_enabled`` of the ranked functions), plus the GPU
    snapshot when ``experimental_options`` asks for it (modal 1.6.4 sends ``{"enable_gpu_snapshot": "True"}``)."""
    if not any(ranked.function.checkpointing_enabled for ranked in data.ranked_functions):
        return "none"
    return "gpu" if data.experimental_options.get("enable_gpu_snapshot") == "True" else "memory"
