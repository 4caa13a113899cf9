"""The fleet's one OpenAI-compatible endpoint: routes by ``model``, client keys, quotas, usage ledger.

Construction (what ``fleet gateway serve``, the local target and a Modal app do)::

    upstreams = {model.served_name: upstream_for(model, endpoint_url, proxy_headers) for model in models}
    app = fleet_gateway(settings, upstreams)  # [gateway] of fleet.toml, the target's key store, prices
    config = settings.gateway  # fleet.toml's [gateway] table (FLEET_GATEWAY__* overrides)
    gateway_server(app, host=config.host, port=config.port).run()  # or run it in a thread/loop

``build_gateway(config, upstreams, key_store=, ledger=, prices=)`` takes each part explicitly.

The package root imports nothing, so ``modelfleet.settings`` can hold a ``GatewayConfig``
(``modelfleet.gateway.config``) without importing the app and its dependencies; import
from the modules: ``gateway.app.build_gateway``, ``gateway.server.fleet_gateway`` /
``gateway_server`` / ``upstream_for``, ``gateway.config.load_gateway_config``.
"""
