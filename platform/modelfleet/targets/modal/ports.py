"""Where things listen inside a serving container (shared by the decorators and the hook bodies)."""

from __future__ import annotations

EDGE_PORT = 8000  # the public port: what Modal forwards to (Server) or relays to (web_server)
VLLM_PORT = 8001  # vLLM on 127.0.0.1 only: reachable through the edge alone
# The edge is started and listening before the web-server method runs (``ServingRuntime.start``),
# so Modal's port wait is short; a long one would only hide a broken edge.
EDGE_STARTUP_TIMEOUT = 120
