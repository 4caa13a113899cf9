"""The fleet gateway's Modal app: one CPU function serving the gateway as an ASGI app, no GPU.

Built by ``gateway_deploy`` in the deploying process (as ``app_build`` builds a model's app)
and rebuilt by every container from ``FLEET_MODAL_GATEWAY_BUNDLE`` baked into the image.
Declared at module level because Modal's container runtime imports this module and takes
``gateway`` from it (modal/_runtime/user_code_imports.py).

``@modal.asgi_app()`` serves what the function returns as a Web Function
(https://modal.com/docs/reference/modal.asgi_app: "Decorator for registering an ASGI app
as a Web Function"; modal 1.6.4 _partial_function.py ``_asgi_app``: WEBHOOK_TYPE_ASGI_APP,
``requires_proxy_auth`` in the WebhookConfig). The gateway is the fleet's public endpoint
with its own client keys; ``[gateway] modal_proxy_auth = true`` keeps Modal's proxy auth in
front of it as well. The model endpoints stay behind proxy auth: the gateway calls them
with the proxy token of the Secret ``[gateway] proxy_token_secret``, whose keys are checked
when the app is created (``Secret.from_name(required_keys=...)``), not at the first request.
"""

from __future__ import annotations

from typing import Any

import modal

from modelfleet.targets.modal.gateway_bundle import (
    GATEWAY_BUNDLE_ENV,
    PROXY_TOKEN_ID_KEY,
    PROXY_TOKEN_SECRET_KEY,
    load_gateway_bundle,
)
from modelfleet.targets.modal.gateway_entry_name import GATEWAY_FUNCTION

__all__ = ["GATEWAY_FUNCTION", "app", "gateway"]

# The gateway relays streams and does no model work: one core and 1 GiB serve many requests
# (bench/gateway_overhead.py measures its CPU per relayed event); inputs are I/O-bound, so one
# container takes many at once (``@modal.concurrent``, https://modal.com/docs/guide/concurrent-inputs).
GATEWAY_CPU = 1.0
GATEWAY_MEMORY_MIB = 1024
GATEWAY_MAX_INPUTS = 500
GATEWAY_TARGET_INPUTS = 200
# Longer than the longest stream a model may send (the models' own request timeout bounds each).
GATEWAY_TIMEOUT_S = 3600
# Pinned like the model images' runtime packages (image.py RUNTIME_PACKAGES), plus what the
# gateway alone imports: the rate-limit library and uvloop/httptools are not needed under Modal's ASGI runner.
GATEWAY_PACKAGES: tuple[str, ...] = (
    "anyio==4.16.0",
    "httpx==0.28.1",
    "limits==5.8.0",
    # /metrics: exposition and the parser of the models' replica reports (gateway/fleet_metrics.py).
    "prometheus-client==0.26.0",
    "pydantic==2.14.4",
    "pydantic-settings==2.16.3",
    "rich==15.0.0",
    "starlette==1.10.0",
    "uvicorn==0.54.0",
)

BUNDLE = load_gateway_bundle()

image = (
    modal.Image.debian_slim(python_version="3.11")
    .uv_pip_install(*GATEWAY_PACKAGES)
    .env({GATEWAY_BUNDLE_ENV: BUNDLE.to_env()})
    .add_local_python_source("modelfleet")
)
app = modal.App(BUNDLE.app_name)


@app.function(
    image=image,
    secrets=[
        modal.Secret.from_name(
            BUNDLE.config.proxy_token_secret,
            environment_name=BUNDLE.modal_environment,
            required_keys=[PROXY_TOKEN_ID_KEY, PROXY_TOKEN_SECRET_KEY],
        )
    ],
    cpu=GATEWAY_CPU,
    memory=GATEWAY_MEMORY_MIB,
    timeout=GATEWAY_TIMEOUT_S,
    # One warm container: the gateway is the fleet's front door, and it is cheap (no GPU).
    min_containers=1,
    include_source=False,
)
@modal.concurrent(max_inputs=GATEWAY_MAX_INPUTS, target_inputs=GATEWAY_TARGET_INPUTS)
@modal.asgi_app(requires_proxy_auth=BUNDLE.config.modal_proxy_auth)
def gateway() -> Any:  # named GATEWAY_FUNCTION: what the deploy looks up
    """The gateway app: the models' endpoints with the proxy token, the keys in the modal.Dict."""
    from modelfleet.targets.modal.gateway_serving import gateway_asgi

    return gateway_asgi(BUNDLE)
