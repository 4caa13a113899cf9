"""The fleet's one OpenAI-compatible endpoint: routes by ``model``, client keys, quotas, usage ledger.

Construction (what ``fleet gateway serve``, the local target and a Modal app do)::

    config = load_gateway_config(root / "fleet.toml")
    app = build_gateway(
        config,
        {"smollm2-135m": Upstream("http://127.0.0.1:8800", {"Modal-Key": ..., "Modal-Secret": ...}, "L4", 1)},
        key_store=open_key_store(config, settings.state_path),
        ledger=open_ledger(config, settings.state_path),
        prices=settings.prices.per_hour,
    )
    gateway_server(app, host=config.host, port=config.port).run()
"""

from modelfleet.gateway.app import build_gateway
from modelfleet.gateway.config import GatewayConfig, load_gateway_config
from modelfleet.gateway.key_stores import LocalKeyStore, ModalKeyStore
from modelfleet.gateway.keys import KeyLimits, KeyRecord, KeyStore, new_key
from modelfleet.gateway.ledger import Ledger
from modelfleet.gateway.server import gateway_server, open_key_store, open_ledger, serve_gateway, upstream_for
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
    "gateway_server",
    "load_gateway_config",
    "new_key",
    "open_key_store",
    "open_ledger",
    "serve_gateway",
    "upstream_for",
]
