"""The project's edge served in a thread of the benchmark process, next to the engine it fronts.

The server is the runtime's own (``edge.edge_server``: uvloop, httptools, no access log), the
one every owner serves; here it runs in a daemon thread of the process that drives the engine,
as in the local supervisor. The Modal container's topology, the edge as its own process, is
measured by ``bench/gpu/servers.py``. Readiness is the runtime's ``EdgeGate``: the benchmark
marks it asleep while vLLM sleeps and ready once it woke, as an owner does.
"""

from __future__ import annotations

import threading
import time

import httpx

from modelfleet.runtime.edge import EdgeConfig, EdgeGate, edge_server


def edge_config(upstream_url: str, gate: EdgeGate, health_info: dict[str, object]) -> EdgeConfig:
    """The edge in modal-proxy mode (Modal checked the token), following ``gate``."""
    return EdgeConfig(
        upstream_url=upstream_url,
        auth_mode="modal-proxy",
        upstream_timeout=600.0,
        health_info=lambda: dict(health_info),
        gate=gate,
    )


class EdgeThread:
    """``edge_server(config)`` on 127.0.0.1:port in a daemon thread."""

    def __init__(self, config: EdgeConfig, port: int) -> None:
        self.port = port
        self.server = edge_server(config, host="127.0.0.1", port=port)
        self.thread = threading.Thread(target=self.server.run, name="modelfleet-edge", daemon=True)

    @property
    def url(self) -> str:
        """Where clients reach the edge."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> float:
        """Start serving; seconds until the edge's /health answered at all."""
        started = time.monotonic()
        self.thread.start()
        while time.monotonic() - started < timeout:
            try:
                httpx.get(f"{self.url}/health", timeout=2.0)
                return time.monotonic() - started
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"the edge did not answer on port {self.port} within {timeout:.0f}s")

    def stop(self) -> None:
        """Ask uvicorn to exit and wait briefly (the thread is a daemon either way)."""
        self.server.should_exit = True
        self.thread.join(timeout=10.0)
