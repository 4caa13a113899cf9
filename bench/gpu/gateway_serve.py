"""The gateway as its own process on the GPU machine, in front of one model's edge.

``fleet gateway serve`` / ``targets/local/gateway_process.py`` need a fleet root (fleet.toml,
catalog); the device has only this checkout's ``platform/modelfleet``. So this builds the same
app from the same parts those use -- ``build_gateway`` with a ``LocalKeyStore``, the SQLite
``Ledger`` and an ``Upstream`` carrying the proxy-token headers -- and serves it with
``gateway_server`` (the edge's uvicorn setup). Every request is checked (client key), counted
against quotas (the key has none that bite) and metered into the ledger, as in production.

Usage: ``python3 -m bench.gpu.gateway_serve --upstream URL --served NAME --state DIR --port N``
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from modelfleet.gateway.app import build_gateway
from modelfleet.gateway.config import GatewayConfig
from modelfleet.gateway.key_stores import LocalKeyStore
from modelfleet.gateway.ledger import Ledger
from modelfleet.gateway.server import gateway_server
from modelfleet.gateway.upstream import Upstream

# The headers Modal's proxy checks and the edge (``--auth modal-proxy``) drops: the gateway sends
# its proxy token as these (targets/local/gateway_process.py: Credentials(...).headers()).
PROXY_HEADERS = {"Modal-Key": "wk-bench", "Modal-Secret": "ws-bench"}
H200_USD_PER_HOUR = 4.54  # only prices the ledger's rows; the figure does not change the work done


def config_for(state: Path) -> GatewayConfig:
    """Defaults (as a fleet.toml without [gateway]) with the stores under ``state``."""
    return GatewayConfig(
        key_store="local",
        keys_file=state / "gateway-keys.json",
        ledger_file=state / "gateway-usage.sqlite",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the model's edge, e.g. http://127.0.0.1:8000")
    parser.add_argument("--served", required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    config = config_for(args.state)
    upstream = Upstream(base_url=args.upstream, headers=PROXY_HEADERS, gpu_type="H200", gpu_count=1)
    app = build_gateway(
        config,
        {args.served: upstream},
        key_store=LocalKeyStore(config.keys_path(args.state)),
        ledger=Ledger(config.ledger_path(args.state)),
        prices={"H200": H200_USD_PER_HOUR},
    )
    server = gateway_server(app, host=args.host, port=args.port)

    def stop(signum: int, frame: object) -> None:
        server.should_exit = True  # as gateway_process.py: drain, then leave through the lifespan

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.run()


if __name__ == "__main__":
    main()
