"""Deploy the fleet gateway's Modal app after the models: ``fleet deploy-all`` (and CI) calls it.

The gateway routes to each model's endpoint URL, known once the model is deployed, so it
goes after them: every model of the catalog whose app is deployed in the Modal environment
(looked up as ``fleet status`` does, ``deploy.deployed_web_url``) becomes an upstream.
The app is built in this process from ``gateway_entry`` as ``app_build`` builds a model's
(the module executed under its own name, the bundle in the environment) and published with
``App.deploy`` (``deploy.publish``). Before that the keys Dict and the usage-ledger Dict are
created if missing (``modal.Dict.from_name(create_if_missing=True)``): every gateway container
reads them, and a gateway whose keys Dict does not exist would refuse every key.

Two deploys of the gateway may overlap (two people's ``fleet deploy``, or parallel jobs that
were not given ``--no-gateway``): each reads the deployed models, then publishes, and the last
to publish wins -- possibly with a list read before the other's model existed. So after
publishing, a deploy reads the deployed models again and publishes once more if they changed
(up to ``CONVERGE_ROUNDS``). Whichever publishes last has read the models after every model
deploy that finished before its own publish, so the route of a model never stays missing.
CI avoids the overlap altogether: its matrix jobs pass ``--no-gateway`` and one job deploys
the gateway after them.
"""

from __future__ import annotations

import asyncio
import time

import modal

from modelfleet.catalog import Catalog
from modelfleet.settings import FleetSettings
from modelfleet.targets.base import DeployOutcome, Result
from modelfleet.targets.modal.app_build import AppBuildError, build_module_app
from modelfleet.targets.modal.client import ModalCommandError
from modelfleet.targets.modal.deploy import DEPLOY_TIMEOUT, client_error_line, deployed_web_url, publish
from modelfleet.targets.modal.gateway_bundle import (
    GATEWAY_BUNDLE_ENV,
    GatewayBundle,
    ModelEndpoint,
    gateway_app_name,
)
from modelfleet.targets.modal.gateway_entry_name import GATEWAY_ENTRY_MODULE, GATEWAY_FUNCTION

GATEWAY_MODEL = "(gateway)"
# Publishes of one gateway deploy at most, while the deployed models keep changing under it.
CONVERGE_ROUNDS = 3


def gateway_bundle(settings: FleetSettings, catalog: Catalog, endpoints: dict[str, ModelEndpoint]) -> GatewayBundle:
    """The gateway's bundle for ``endpoints`` (served name -> endpoint)."""
    return GatewayBundle(
        app_name=gateway_app_name(settings.app_prefix),
        modal_environment=settings.modal_environment,
        config=settings.gateway,
        endpoints=endpoints,
        prices=dict(settings.prices.per_hour),
    )


def deployed_endpoints(settings: FleetSettings, catalog: Catalog) -> dict[str, ModelEndpoint]:
    """Served name -> endpoint of every catalog model deployed in the environment (others are left out)."""
    endpoints = {}
    for model in sorted(catalog.models.values(), key=lambda m: m.name):
        try:
            url = deployed_web_url(settings.app_name(model.name), settings.modal_environment)
        except ModalCommandError:
            continue
        endpoints[model.served_name] = ModelEndpoint(
            url=url, gpu_type=model.spec.gpu.type, gpu_count=model.spec.gpu.count
        )
    return endpoints


def build_gateway_app(bundle: GatewayBundle) -> modal.App:
    """A fresh ``modal.App`` declared by ``gateway_entry`` for ``bundle`` (see ``app_build.build_app``)."""
    return build_module_app(GATEWAY_ENTRY_MODULE, GATEWAY_BUNDLE_ENV, bundle.to_env())


def deploy_gateway(settings: FleetSettings, catalog: Catalog, *, tag: str) -> DeployOutcome:
    """Deploy the gateway in front of every deployed model; the outcome names its URL or why it failed."""
    started = time.monotonic()
    app_name = gateway_app_name(settings.app_prefix)
    env = settings.modal_environment

    def outcome(result: Result, *, url: str = "", detail: str = "") -> DeployOutcome:
        return DeployOutcome(GATEWAY_MODEL, app_name, result, time.monotonic() - started, url=url, detail=detail)

    endpoints = deployed_endpoints(settings, catalog)
    if not endpoints:
        return outcome("skipped", detail="no model is deployed: nothing to route to")
    try:
        for dict_name in (settings.gateway.keys_dict, settings.gateway.ledger_dict):
            modal.Dict.from_name(dict_name, environment_name=env, create_if_missing=True).hydrate()
        for _ in range(CONVERGE_ROUNDS):
            app = build_gateway_app(gateway_bundle(settings, catalog, endpoints))
            asyncio.run(publish(app, app_name, env, tag, timeout=DEPLOY_TIMEOUT))
            now = deployed_endpoints(settings, catalog)
            if now == endpoints:
                break
            endpoints = now  # a model was deployed (or removed) while this one published: again
        else:
            return outcome(
                "failed",
                detail=f"the deployed models kept changing over {CONVERGE_ROUNDS} publishes; run `fleet gateway deploy` "
                "once the other deploys are done",
            )
        url = modal.Function.from_name(app_name, GATEWAY_FUNCTION, environment_name=env).get_web_url() or ""
    except AppBuildError as error:
        return outcome("failed", detail=str(error))
    except TimeoutError:
        return outcome("failed", detail=f"timed out after {DEPLOY_TIMEOUT:.0f}s")
    except Exception as error:  # the client's refusal, as the CLI would print it
        return outcome("failed", detail=client_error_line(error))
    return outcome("ok", url=url.rstrip("/"), detail=f"routes {', '.join(sorted(endpoints))}")
