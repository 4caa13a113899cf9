"""The local target's gateway process: started in front of the running edges with a service token
it minted itself, left alone while they do not change, stopped (token revoked) with the last one.

The edge here is a recording vLLM-shaped server (``RecordingUpstream``), so the test sees the
headers the gateway sends; the real edge and vLLM are in tests/e2e/test_local_fleet.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from modelfleet.catalog import load_catalog
from modelfleet.gateway.key_stores import LocalKeyStore
from modelfleet.gateway.keys import KeyLimits, new_key
from modelfleet.runtime.ports import free_port
from modelfleet.runtime.tokens import TokenStore, parse_credentials
from modelfleet.settings import FleetSettings
from modelfleet.targets.local.gateway_process import GatewayBook, gateway_health, stop_gateway, sync_gateway
from modelfleet.targets.local.processes import is_alive
from modelfleet.targets.local.runs import LocalRun, RunBook
from tests.support.gateway_fixtures import RecordingUpstream, serving


@pytest.fixture
def settings(
    fleet_repo: Path, write_model: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> FleetSettings:
    write_model("demo")
    monkeypatch.setenv("FLEET_GATEWAY__PORT", str(free_port()))
    return FleetSettings()


def test_the_gateway_reaches_the_edge_with_its_own_service_token_and_goes_with_the_last_edge(
    settings: FleetSettings,
) -> None:
    served = load_catalog(settings).require("demo").served_name
    upstream = RecordingUpstream()
    tokens = TokenStore(settings.tokens_path)
    with serving(upstream.app()) as edge_url:
        port = int(edge_url.rsplit(":", 1)[1])
        # A supervisor that is alive (this test process) whose edge is the recording server.
        RunBook(settings.state_path).write(
            LocalRun(model="demo", spec_hash="x", supervisor_pid=os.getpid(), edge_port=port)
        )
        try:
            run = sync_gateway(settings)
            assert run is not None and run.last_error == "", run
            assert run.upstreams == {served: edge_url} and gateway_health(run) == "healthy"
            assert run.port == settings.gateway.port
            # Unchanged edges: the same process is kept.
            again = sync_gateway(settings)
            assert again is not None and again.pid == run.pid

            record, key = new_key("alice", KeyLimits())
            LocalKeyStore(settings.gateway.keys_path(settings.state_path)).add(record)
            client = openai.OpenAI(base_url=f"{run.url}/v1", api_key=key, max_retries=0)
            client.completions.create(model=served, prompt="x", max_tokens=2)

            (received,) = upstream.received
            credentials = parse_credentials(received.headers)
            assert credentials is not None, "the gateway sent no token to the edge"
            assert tokens.verify(*credentials), "the edge would refuse the gateway's token"
            assert key not in str(received.headers)  # the client's key stays at the gateway
            (service,) = [t for t in tokens.list() if t.key == credentials[0]]
            assert service.name.startswith(f"gateway-{run.pid}-")
            assert oct(settings.tokens_path.stat().st_mode & 0o777) == "0o600"
            log = GatewayBook(settings.state_path).log_path.read_text()
            assert credentials[1] not in log and key not in log

            # The last edge gone: the gateway stops, its record and its token with it.
            RunBook(settings.state_path).forget("demo")
            assert sync_gateway(settings) is None
            assert not is_alive(run.pid)
            assert GatewayBook(settings.state_path).read() is None
            # Revoked: the name is gone from the store, and a fresh reader refuses the pair.
            assert not [t for t in tokens.list() if t.name == service.name]
            assert not TokenStore(settings.tokens_path).verify(*credentials)
        finally:
            stop_gateway(settings)


def test_a_gateway_that_cannot_bind_its_port_comes_back_with_the_reason(settings: FleetSettings) -> None:
    upstream = RecordingUpstream()
    with serving(upstream.app()) as edge_url, serving(upstream.app()) as taken_url:
        port = int(edge_url.rsplit(":", 1)[1])
        RunBook(settings.state_path).write(
            LocalRun(model="demo", spec_hash="x", supervisor_pid=os.getpid(), edge_port=port)
        )
        blocked = settings.model_copy(
            update={"gateway": settings.gateway.model_copy(update={"port": int(taken_url.rsplit(":", 1)[1])})}
        )
        try:
            run = sync_gateway(blocked)
            assert run is not None and "the gateway exited with code" in run.last_error, run
            assert not is_alive(run.pid)
        finally:
            stop_gateway(blocked)
