"""A front "container": the project's real edge served by uvicorn in a thread, stopped like a container.

Why separate: the web front (``modal_web_front``) boots and stops these; what runs inside
is the runtime's ``edge_server``, exactly as ``targets/modal/serving.py`` starts it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import uvicorn

from modelfleet.runtime.command import free_port
from modelfleet.runtime.edge import EdgeConfig, edge_server


@dataclass
class FrontContainer:
    """A running container: its recorder task id, version, boot and the edge serving in it."""

    task_id: str
    app_id: str
    version: int
    boot: str
    boot_seconds: float
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    url: str = ""

    def stop(self) -> None:
        """Shut the container's edge down (what ``modal container stop`` does to its process)."""
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)


def start_edge(container: FrontContainer, config: EdgeConfig) -> None:
    port = free_port()
    server = edge_server(config, host="127.0.0.1", port=port)
    thread = threading.Thread(target=server.run, name=f"front-container-{container.task_id}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the container's edge did not start")
        time.sleep(0.02)
    container.server, container.thread, container.url = server, thread, f"http://127.0.0.1:{port}"
