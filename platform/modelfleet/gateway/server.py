"""Putting a gateway together and serving it: what ``fleet gateway serve``, the local target
and a Modal app call.

- ``open_key_store`` / ``open_ledger``: the stores fleet.toml's ``[gateway]`` names;
- ``upstream_for``: a catalog model + its endpoint and credentials -> ``Upstream``;
- ``metrics_for``: what its /metrics reads (the local engines, or the replicas' reports);
- ``fleet_gateway``: the app for a fleet's settings and upstreams (all of the above);
- ``gateway_server``: a uvicorn server for the app (run it in a thread or a loop of your
  own); ``serve_gateway`` blocks until the process is told to stop.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from modelfleet.catalog import CatalogModel
from modelfleet.gateway.app import build_gateway
from modelfleet.gateway.config import GatewayConfig
from modelfleet.gateway.fleet_metrics import GatewayMetrics
from modelfleet.gateway.key_stores import LocalKeyStore, ModalKeyStore
from modelfleet.gateway.keys import KeyStore
from modelfleet.gateway.ledger import Ledger, UsageLedger
from modelfleet.gateway.modal_ledger import ModalLedger
from modelfleet.gateway.upstream import Upstream
from modelfleet.runtime.edge_http import relay_server
from modelfleet.settings import FleetSettings


def open_key_store(
    config: GatewayConfig, state_path: Path, *, target: str = "local", modal_environment: str | None = None
) -> KeyStore:
    """The key store ``config.key_store`` names: the local 0600 file, or the Modal Dict ("auto": the target's)."""
    kind = target if config.key_store == "auto" else config.key_store
    if kind == "modal":
        return ModalKeyStore(config.keys_dict, modal_environment)
    return LocalKeyStore(config.keys_path(state_path))


def open_ledger(
    config: GatewayConfig, state_path: Path, *, target: str = "local", modal_environment: str | None = None
) -> UsageLedger:
    """The target's ledger: on Modal the shared Dict every gateway container writes (``ModalLedger``),
    elsewhere the local SQLite file (created if missing)."""
    if target == "modal":
        return ModalLedger(config.ledger_dict, modal_environment)
    return Ledger(config.ledger_path(state_path))


def upstream_for(model: CatalogModel, base_url: str, headers: Mapping[str, str] | None = None) -> Upstream:
    """How the gateway reaches ``model`` at ``base_url`` with ``headers`` (its proxy-token headers)."""
    return Upstream(
        base_url=base_url, headers=dict(headers or {}), gpu_type=model.spec.gpu.type, gpu_count=model.spec.gpu.count
    )


def fleet_gateway(
    settings: FleetSettings, upstreams: Mapping[str, Upstream], config: GatewayConfig | None = None
) -> Starlette:
    """``build_gateway`` with what the fleet's settings name: fleet.toml's [gateway] table (unless
    ``config`` is given), the target's key store and ledger and the fleet's GPU prices."""
    config = config or settings.gateway
    return build_gateway(
        config,
        upstreams,
        key_store=open_key_store(
            config, settings.state_path, target=settings.target, modal_environment=settings.modal_environment
        ),
        ledger=open_ledger(
            config, settings.state_path, target=settings.target, modal_environment=settings.modal_environment
        ),
        prices=settings.prices.per_hour,
        metrics=metrics_for(settings),
    )


def metrics_for(settings: FleetSettings) -> GatewayMetrics:
    """The /metrics of a gateway the fleet's settings describe (``gateway/fleet_metrics.py``): on the local
    target each running engine's /metrics read on this machine, elsewhere the replicas' in-band reports."""
    environment = settings.env or settings.modal_environment
    if settings.target != "local":
        return GatewayMetrics(target=settings.target, environment=environment)
    from modelfleet.observe.local_source import scrape_local
    from modelfleet.targets.local.runs import RunBook

    book = RunBook(settings.state_path)
    return GatewayMetrics(target="local", environment=environment, replicas=lambda: scrape_local(book))


def gateway_server(app: Starlette, *, host: str, port: int, graceful_shutdown: int | None = 30) -> uvicorn.Server:
    """A uvicorn server for a gateway app (from ``build_gateway``), set up as the edge's is
    (``relay_server``: uvloop + httptools, no access log); SIGTERM lets streams finish first."""
    return relay_server(app, host=host, port=port, graceful_shutdown=graceful_shutdown)


def serve_gateway(app: Starlette, *, host: str, port: int) -> None:
    """Serve until the process is told to stop (blocks)."""
    gateway_server(app, host=host, port=port).run()
