"""The loopback web front relaying to a container that runs elsewhere: the rehearsed one.

Why: the front (``modal_web_front``) normally boots its own "containers" -- the edge in a
thread in front of a shared vLLM. The container rehearsal (``fleet rehearse``) runs the
real thing: the app module's hooks under Modal's runtime functions, in a process of its
own, serving on the port its definition declares. This front keeps everything Modal's
front does (one URL per endpoint, proxy auth against the recorder's tokens, the request
limit and its 303s, the container registered with the recorder) and relays to that
port instead of starting an edge.

It stands for ONE container: the rehearsal runs one, and it cannot be booted again.
The first request "boots" it (registers it with the recorder; the boot kind is what
the container's own /health says); after ``modal container stop`` a request answers
502, as a front whose container cannot start does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from .modal_web_front import Boot, Endpoint, FrontSettings, Live, ModalWebFront
from .modal_web_front_containers import FrontContainer

if TYPE_CHECKING:
    from .modal_api import ModalApiRecorder


class ExternalContainerError(RuntimeError):
    """The external container was asked to boot a second time."""


class ExternalContainerFront(ModalWebFront):
    """``ModalWebFront`` whose one container is the process already serving at ``container_url``."""

    def __init__(self, api: ModalApiRecorder, container_url: str, *, request_limit: float = 150.0) -> None:
        super().__init__(api, FrontSettings(upstream_url=container_url, request_limit=request_limit))
        self.container_url = container_url
        self._booted = False

    async def _boot(self, endpoint: Endpoint, live: Live) -> FrontContainer:
        if self._booted:
            raise ExternalContainerError("the rehearsed container was stopped and cannot boot again")
        self._booted = True
        with self.api._lock:
            environment = next(
                env for (env, _), app_id in self.api.state.deployed_names.items() if app_id == live.app_id
            )
            task_id = self.api._add_container(endpoint.app_name, environment)
        async with httpx.AsyncClient(timeout=10) as client:
            health = (await client.get(f"{self.container_url}/health")).json()
        boot = str(health.get("boot", "unknown"))
        container = FrontContainer(
            task_id, live.app_id, live.version, boot, float(health.get("boot_seconds", 0.0)), url=self.container_url
        )
        self._containers[live.app_id] = container
        self.boots.append(Boot(endpoint.app_name, live.version, boot))
        return container
