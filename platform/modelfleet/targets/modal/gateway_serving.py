"""Inside a gateway container: the gateway app from its bundle and the proxy-token Secret."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from modelfleet.gateway.app import build_gateway
from modelfleet.gateway.fleet_metrics import GatewayMetrics
from modelfleet.gateway.key_stores import ModalKeyStore
from modelfleet.gateway.modal_ledger import ModalLedger
from modelfleet.gateway.upstream import Upstream
from modelfleet.targets.modal.gateway_bundle import PROXY_TOKEN_ID_KEY, PROXY_TOKEN_SECRET_KEY, GatewayBundle


def proxy_headers() -> dict[str, str]:
    """Modal-Key/Modal-Secret from the Secret's environment variables (Modal's proxy auth takes the pair)."""
    return {"Modal-Key": os.environ[PROXY_TOKEN_ID_KEY], "Modal-Secret": os.environ[PROXY_TOKEN_SECRET_KEY]}


def gateway_upstreams(bundle: GatewayBundle, headers: dict[str, str]) -> dict[str, Upstream]:
    """Served name -> the model's endpoint, called with ``headers``."""
    return {
        served: Upstream(base_url=e.url, headers=headers, gpu_type=e.gpu_type, gpu_count=e.gpu_count)
        for served, e in bundle.endpoints.items()
    }


def gateway_asgi(bundle: GatewayBundle) -> Starlette:
    """The ASGI app Modal serves. The ledger is the shared Dict (``ModalLedger``): each container
    writes its own rows, ``fleet usage`` and the daily/monthly quotas sum every container's."""
    return build_gateway(
        bundle.config,
        gateway_upstreams(bundle, proxy_headers()),
        key_store=ModalKeyStore(bundle.config.keys_dict, bundle.modal_environment),
        ledger=ModalLedger(bundle.config.ledger_dict, bundle.modal_environment),
        prices=bundle.prices,
        # /metrics: the models' replicas from the reports their edges attach (in-band: serving
        # containers have no egress, and a scrape of a model's URL would wake its GPU).
        metrics=GatewayMetrics(target="modal", environment=bundle.modal_environment),
    )
