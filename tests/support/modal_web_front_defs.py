"""What a deployed web endpoint serves, read from the recorder: the live version's definitions.

Why separate: the web front (``modal_web_front``) decides auth and snapshots from the
definition FunctionCreate carried, per deployed version (a rollback serves an older one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modal_proto import api_pb2

if TYPE_CHECKING:
    from .modal_api import ModalApiRecorder


def live_definitions(api: ModalApiRecorder, app_id: str) -> list[api_pb2.FunctionData]:
    """The function definitions the app's live version serves (per version where the recorder keeps them)."""
    state = api.state
    app = state.apps[app_id]
    live = app.deployments[-1] if app.deployments else None
    per_version = getattr(live, "functions", None) or {}
    definitions = []
    for function_id in app.function_ids.values():
        kept = per_version.get(function_id)
        definition = kept[1] if kept else state.function_data.get(function_id)
        if definition is not None:
            definitions.append(definition)
    return definitions


def web_auth(definition: api_pb2.FunctionData, url: str) -> bool | None:
    """Whether the web endpoint at ``url`` requires proxy auth; None when this definition does not serve it."""
    if definition.web_url == url and definition.webhook_config.type:
        return bool(definition.webhook_config.requires_proxy_auth)
    for method in definition.method_definitions.values():
        if method.web_url == url and method.webhook_config.type:
            return bool(method.webhook_config.requires_proxy_auth)
    return None


def snapshots_enabled(definition: api_pb2.FunctionData) -> bool:
    """``enable_memory_snapshot`` as FunctionCreate carries it: ``checkpointing_enabled`` of the ranked functions."""
    return any(ranked.function.checkpointing_enabled for ranked in definition.ranked_functions)
