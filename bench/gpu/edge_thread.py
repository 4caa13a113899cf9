"""The project's edge served by uvicorn in a thread of the benchmark process, as the Modal container runs it.

On Modal the edge is a uvicorn server in a daemon thread of the process that owns the
engine (``targets/modal/serving.py``); the benchmark does the same, so the edge's
throughput is measured under the topology production uses. The runtime's edge API is
still being refined, so the few differences between its versions are bridged here
(readiness as an ``EdgeGate`` or an ``is_ready`` callback).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import httpx
import uvicorn

from modelfleet.runtime.edge import EdgeConfig, build_edge


class Readiness:
    """What the snapshot hooks tell the edge: asleep while vLLM sleeps, ready once it woke."""

    def __init__(self) -> None:
        self.state = "ready"
        self.gate: Any = None

    def mark(self, state: str) -> None:
        """Record the engine's state in whichever form the edge reads it."""
        self.state = state
        if self.gate is not None:
            self.gate.mark(state)

    def ready(self) -> bool:
        """Whether requests may go to vLLM (the ``is_ready`` callback form)."""
        return self.state == "ready"


def edge_config(upstream_url: str, readiness: Readiness, health_info: dict[str, object]) -> tuple[EdgeConfig, str]:
    """EdgeConfig in modal-proxy mode (Modal checked the token), wired to ``readiness``; and which API it used."""
    names = {field.name for field in dataclasses.fields(EdgeConfig)}
    kwargs: dict[str, Any] = {"upstream_url": upstream_url, "auth_mode": "modal-proxy", "upstream_timeout": 600.0}
    if "health_info" in names:
        kwargs["health_info"] = lambda: dict(health_info)
    if "gate" in names:
        from modelfleet.runtime.edge import EdgeGate  # type: ignore[attr-defined,unused-ignore]

        readiness.gate = EdgeGate()
        kwargs["gate"] = readiness.gate
        api = "gate"
    elif "is_ready" in names:
        kwargs["is_ready"] = readiness.ready
        api = "is_ready"
    else:
        api = "none"
    return EdgeConfig(**kwargs), api


class EdgeThread:
    """uvicorn serving ``build_edge(config)`` on 127.0.0.1:port in a daemon thread."""

    def __init__(self, config: EdgeConfig, port: int) -> None:
        self.port = port
        self.server = uvicorn.Server(
            uvicorn.Config(build_edge(config), host="127.0.0.1", port=port, log_level="warning", access_log=False)
        )
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
