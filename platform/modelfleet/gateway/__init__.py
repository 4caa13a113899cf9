"""The fleet's one OpenAI-compatible endpoint: routes by ``model``, client keys, quotas, usage ledger.

Construction (what ``fleet gateway serve``, the local target and a Modal app do)::

    upstreams = {model.served_name: upstream_for(model, endpoint_url, proxy_headers) for model in models}
    app = fleet_gateway(settings, upstreams)  # [gateway] of fleet.toml, the target's key store, prices
    config = load_gateway_config(settings.root / "fleet.toml")
    gateway_server(app, host=config.host, port=config.port).run()  # or run it in a thread/loop

``build_gateway(config, upstreams, key_store=, ledger=, prices=)`` takes each part explicitly.
"""

from modelfleet.gateway.app import build_gateway
from modelfleet.gateway.config import GatewayConfig, load_gateway_config
from modelfleet.gateway.key_stores import LocalKeyStore, ModalKeyStore
from modelfleet.gateway.keys import KeyLimits, KeyRecord, KeyStore, new_key
from modelfleet.gateway.ledger import Ledger
from modelfleet.gateway.server import (
    fleet_gateway,
    gateway_server,
    open_key_store,
    open_ledger,
    serve_gateway,
    upstream_for,
)
from modelfleet.gateway.upstream import Upstream

__all__ = [
    "GatewayConfig",
    "KeyLimits",
    "KeyRecord",
    "KeyStore",
    "Ledger",
    "LocalKeyStore",
    "ModalKeyStore",
    "Upstream",
    "build_gateway",
    "fleet_gateway",
    "gateway_server",
    "load_gateway_config",
    "new_key",
    "open_key_store",
    "open_ledger",
    "serve_gateway",
    "upstream_for",
]
