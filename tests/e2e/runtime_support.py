"""Helpers the runtime e2e tests share: a token pair and a real uvicorn edge in a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from tests.support.waiting import wait_until

from modelfleet.runtime.edge import EdgeConfig, edge_server
from modelfleet.runtime.ports import free_port

DEMO = "smollm2-135m"


@dataclass(frozen=True)
class Token:
    """A live token of the session's store."""

    key: str
    secret: str

    @property
    def modal_headers(self) -> dict[str, str]:
        """Modal's two-header form."""
        return {"Modal-Key": self.key, "Modal-Secret": self.secret}

    @property
    def bearer_headers(self) -> dict[str, str]:
        """Modal's one-header form."""
        return {"Authorization": f"Bearer {self.key}.{self.secret}"}


@contextmanager
def running_edge(config: EdgeConfig) -> Iterator[str]:
    """Serve an edge with real uvicorn on a free port in a thread; yields its base URL."""
    port = free_port()
    server: uvicorn.Server = edge_server(config, host="127.0.0.1", port=port)
    thread = threading.Thread(target=server.run, name="edge", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 20, interval=0.02)
    if not server.started:
        raise RuntimeError("the edge did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
