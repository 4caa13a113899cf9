"""The gateway container's inputs: its bundle round-trips through the image variable, a missing or
damaged one is one clear line, and every model is called with the proxy token of the Secret."""

from __future__ import annotations

import pytest

from modelfleet.gateway.config import GatewayConfig
from modelfleet.targets.modal.gateway_bundle import (
    GATEWAY_BUNDLE_ENV,
    GatewayBundle,
    GatewayBundleError,
    ModelEndpoint,
    load_gateway_bundle,
)
from modelfleet.targets.modal.gateway_serving import gateway_upstreams, proxy_headers

BUNDLE = GatewayBundle(
    app_name="fleet-gateway",
    modal_environment="main",
    config=GatewayConfig(aliases={"gpt-4o-mini": "served-a"}),
    endpoints={
        "served-a": ModelEndpoint(url="https://ws--fleet-a-server-serve.modal.run", gpu_type="H100", gpu_count=2)
    },
    prices={"H100": 3.95},
)


def test_the_bundle_round_trips_through_the_image_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GATEWAY_BUNDLE_ENV, BUNDLE.to_env())
    assert load_gateway_bundle() == BUNDLE


def test_a_missing_or_damaged_bundle_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GATEWAY_BUNDLE_ENV, raising=False)
    with pytest.raises(GatewayBundleError, match="is not set: the gateway app is deployed by `fleet deploy-all`"):
        load_gateway_bundle()
    monkeypatch.setenv(GATEWAY_BUNDLE_ENV, "not base64 {")
    with pytest.raises(GatewayBundleError, match="is not a gateway bundle"):
        load_gateway_bundle()


def test_every_model_is_called_with_the_secrets_proxy_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_PROXY_TOKEN_ID", "wk-abc")
    monkeypatch.setenv("FLEET_PROXY_TOKEN_SECRET", "ws-def")
    (upstream,) = gateway_upstreams(BUNDLE, proxy_headers()).values()
    assert upstream.headers == {"Modal-Key": "wk-abc", "Modal-Secret": "ws-def"}
    assert (upstream.base_url, upstream.gpu_type, upstream.gpu_count) == (
        "https://ws--fleet-a-server-serve.modal.run",
        "H100",
        2,
    )
