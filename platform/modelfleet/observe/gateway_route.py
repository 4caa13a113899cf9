"""The fleet's /metrics for the gateway: the collector's registry, behind an admin key.

The gateway mounts ``metrics_route(...)`` before its catch-all route. The key is checked
against its sha256 (the gateway keeps hashes only, like its client keys), in constant
time; a client key never opens it: fleet-wide figures are the operator's.
"""

from __future__ import annotations

import hashlib
import hmac

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelfleet.catalog import Catalog
from modelfleet.observe.exposition import DEFAULT_TTL, fleet_registry
from modelfleet.observe.fleet_view import collector_for
from modelfleet.settings import FleetSettings


def metrics_route(registry: CollectorRegistry, admin_key_sha256: str, path: str = "/metrics") -> Route:
    """A GET route answering the registry's exposition to ``Authorization: Bearer <admin key>`` only."""

    async def metrics(request: Request) -> Response:
        if not _is_admin(request.headers.get("authorization", ""), admin_key_sha256):
            return JSONResponse({"error": {"message": "the fleet's metrics need the admin key", "code": 401}}, 401)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Route(path, metrics, methods=["GET"])


def fleet_metrics_route(
    settings: FleetSettings, catalog: Catalog, admin_key_sha256: str, ttl: float = DEFAULT_TTL
) -> Route:
    """``metrics_route`` over the fleet's own registry (the collector ``fleet metrics`` prints), for the gateway.

    Mount it before the gateway's catch-all route: ``routes.insert(0, fleet_metrics_route(...))``.
    """
    return metrics_route(fleet_registry(collector_for(settings, catalog, ttl)), admin_key_sha256)


def _is_admin(authorization: str, admin_key_sha256: str) -> bool:
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key:
        return False
    presented = hashlib.sha256(key.strip().encode()).hexdigest()
    return hmac.compare_digest(presented, admin_key_sha256)
