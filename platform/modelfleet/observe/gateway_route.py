"""The fleet's /metrics for the gateway: a registry's exposition, behind an admin key.

The key is checked by the gateway's own ``Authenticator`` with scope "admin"
(``gateway/auth.py``): the same stored hashes, constant-time comparison and revocation
TTL as client keys. No key (or a bad one) is 401, a client key 403 -- fleet-wide figures
are the operator's. ``gateway/fleet_metrics.py`` mounts it in every gateway
(``build_gateway``); the exposition runs in a worker thread, because a direct source (the
local engines' /metrics) is read during it and must not stall the gateway's event loop.
"""

from __future__ import annotations

import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelfleet.gateway.auth import Authenticator, AuthFailure
from modelfleet.runtime.edge_http import error_response

METRICS_PATH = "/metrics"


def metrics_route(registry: CollectorRegistry, auth: Authenticator, path: str = METRICS_PATH) -> Route:
    """A GET route answering the registry's exposition to ``Authorization: Bearer <admin key>`` only."""

    async def metrics(request: Request) -> Response:
        try:
            await auth.authenticate(request.headers.get("authorization"), "admin")
        except AuthFailure as failure:
            refused = error_response(failure.status, failure.message, failure.code)
            if failure.status == 401:
                refused.headers["WWW-Authenticate"] = "Bearer"
            return refused
        body = await anyio.to_thread.run_sync(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Route(path, metrics, methods=["GET"])
