"""Which Modal primitive serves each example model, and what its deploy sends (real client, loopback API).

The rule (``targets/modal/primitive.py``): a Modal Server when the model keeps a container
running (``min_containers >= 1``) and allows egress, the classic web endpoint when it
scales to zero (a Server answers 503 while no container runs) or blocks egress (the
default: ``block_network``, which Servers lack). The four example models scale to zero
and block egress, so they deploy as declared with the classic endpoint
(tests/contract/test_modal_target.py asserts its fields); here the same four folders with
one warm container and egress allowed deploy as Servers, and what FunctionCreate carries
is asserted field by field. A Server is then served through the loopback front.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from modal_proto import api_pb2

from modelfleet.catalog import Catalog, load_catalog
from modelfleet.postdeploy.probe import probe_boot
from modelfleet.settings import FleetSettings
from modelfleet.targets.modal.ports import EDGE_PORT
from modelfleet.targets.modal.primitive import serving_primitive
from tests.contract.test_modal_front import mint_token
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import REPO, app_definitions, create_workspace, drive, ranked_functions
from tests.support.modal_web_front import FrontSettings, ModalWebFront
from tests.unit.test_smoke_endpoint import Behaviour, FakeEndpoint

EXAMPLE_MODELS = ["llama31-8b-instruct", "llama33-70b-instruct", "qwen25-vl-7b-instruct", "smollm2-135m"]


def _fleet_root(tmp: Path, *, extra: str = "", top: str = "", models: list[str] = EXAMPLE_MODELS) -> Path:
    """A copy of the repo's fleet with ``top`` prepended and ``extra`` appended to each model.toml."""
    shutil.copy(REPO / "fleet.toml", tmp / "fleet.toml")
    shutil.copytree(REPO / "volumes", tmp / "volumes")
    for name in models:
        shutil.copytree(REPO / "models" / name, tmp / "models" / name)
        toml = tmp / "models" / name / "model.toml"
        toml.write_text(top + toml.read_text() + extra)
    return tmp


def _with_min_containers(text: str, count: int) -> str:
    """The model's [scaling] table with ``min_containers = count`` added (every example has one)."""
    return text.replace("[scaling]\n", f"[scaling]\nmin_containers = {count}\n", 1)


def _as_server(text: str) -> str:
    """One warm container and egress allowed: what a model needs to be served by a Modal Server."""
    return _with_min_containers(text, 1) + '\n[privacy]\negress = "allowed"\n'


@dataclass
class Deployed:
    api: ModalApiRecorder
    catalog: Catalog
    outcomes: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def warm_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """The four example models, each keeping one container warm: deployed once."""
    root = _fleet_root(tmp_path_factory.mktemp("warm-fleet"))
    for name in EXAMPLE_MODELS:
        toml = root / "models" / name / "model.toml"
        toml.write_text(_as_server(toml.read_text()))
    with ModalApiRecorder() as api:
        create_workspace(api, root)
        outcomes = drive(api, "deploy", "commit-1", root=root)
        yield Deployed(api, load_catalog(FleetSettings(root=root)), {o["model"]: o for o in outcomes})


def _definitions(api: ModalApiRecorder, app_name: str) -> dict[str, Any]:
    return app_definitions(api, api.apps()[app_name].app_id)


_ranked = ranked_functions


def test_the_example_models_scale_to_zero_so_the_classic_endpoint_serves_them() -> None:
    catalog = load_catalog(FleetSettings(root=REPO))
    assert {name: serving_primitive(catalog.require(name).spec) for name in EXAMPLE_MODELS} == dict.fromkeys(
        EXAMPLE_MODELS, "web_server"
    )


def test_every_warm_example_model_deploys_as_a_modal_server_with_its_url(warm_fleet: Deployed) -> None:
    assert {m: o["result"] for m, o in warm_fleet.outcomes.items()} == dict.fromkeys(EXAMPLE_MODELS, "ok")
    for name in EXAMPLE_MODELS:
        assert serving_primitive(warm_fleet.catalog.require(name).spec) == "server"
        # modal.Server.from_name(app, "Server").get_url(): the routing region's modal.direct URL.
        assert warm_fleet.outcomes[name]["url"] == f"https://modelfleet-test--fleet-{name}-server.us-east.modal.direct"
        assert set(_definitions(warm_fleet.api, f"fleet-{name}")) == {"Server"}
    assert warm_fleet.api.unimplemented == []


def test_a_server_deploy_sends_no_class_and_no_web_method(warm_fleet: Deployed) -> None:
    # A Server is one function (is_server): no ClassCreate, no @modal.web_server method, no @modal.concurrent.
    app_ids = {warm_fleet.api.apps()[f"fleet-{name}"].app_id for name in EXAMPLE_MODELS}
    assert not [r for r in warm_fleet.api.requests("ClassCreate") if r.app_id in app_ids]
    for name in EXAMPLE_MODELS:
        server = _definitions(warm_fleet.api, f"fleet-{name}")["Server"]
        assert server.is_server  # (is_class too: the client describes a Server as a class service function)
        assert not server.method_definitions and not server.webhook_config.type


@pytest.mark.parametrize("name", EXAMPLE_MODELS)
def test_the_server_carries_port_auth_concurrency_grace_snapshots_and_resources(
    warm_fleet: Deployed, name: str
) -> None:
    spec = warm_fleet.catalog.require(name).spec
    server = _definitions(warm_fleet.api, f"fleet-{name}")["Server"]
    http = server.http_config
    assert http.port == EDGE_PORT
    assert http.unauthenticated is False  # proxy auth: the model is not declared public
    assert http.exit_grace_period == spec.scaling.grace_seconds() == min(spec.scaling.timeout, 3600)
    assert http.startup_timeout == spec.scaling.startup_timeout
    assert list(http.proxy_regions) == ["us-east"]
    autoscaler = server.autoscaler_settings
    assert (autoscaler.min_containers, autoscaler.max_containers, autoscaler.scaledown_window) == (
        1,
        spec.scaling.max_containers,
        spec.scaling.scaledown_window,
    )
    assert autoscaler.target_concurrency_float == spec.scaling.target_concurrent_inputs
    gpu_snapshot = {"enable_gpu_snapshot": "True"} if spec.snapshot.gpu_snapshot else {}
    assert dict(server.experimental_options) == gpu_snapshot
    ranked = _ranked(server)
    assert [(f.resources.gpu_config.gpu_type, f.resources.gpu_config.count) for f in ranked] == spec.gpu.options()
    for fn in ranked:
        assert fn.max_concurrent_inputs == spec.scaling.max_concurrent_inputs <= spec.vllm.max_num_seqs
        assert fn.checkpointing_enabled is spec.snapshot.enabled
        assert (fn.resources.milli_cpu, fn.resources.memory_mb) == (
            int(spec.serving_cpu() * 1000),
            spec.serving_memory_mib(),
        )


def test_a_declared_grace_period_and_a_public_server_reach_modal(tmp_path: Path) -> None:
    root = _fleet_root(tmp_path, models=["smollm2-135m"], extra="\n[auth]\npublic = true\n")
    toml = root / "models" / "smollm2-135m" / "model.toml"
    toml.write_text(_as_server(toml.read_text()).replace("[scaling]\n", "[scaling]\nexit_grace_period = 45\n"))
    with ModalApiRecorder() as api:
        create_workspace(api, root)
        (outcome,) = drive(api, "deploy", "commit-1", root=root)
        assert outcome["result"] == "ok", outcome
        server = _definitions(api, "fleet-smollm2-135m")["Server"]
    assert (server.http_config.exit_grace_period, server.http_config.unauthenticated) == (45, True)


def test_a_warm_model_blocks_egress_by_default_on_the_classic_endpoint(tmp_path: Path) -> None:
    # No [privacy] table: blocked is the default, and Servers take no block_network (modal 1.6.4 App.server).
    root = _fleet_root(tmp_path, models=["smollm2-135m"])
    toml = root / "models" / "smollm2-135m" / "model.toml"
    toml.write_text(_with_min_containers(toml.read_text(), 1))
    with ModalApiRecorder() as api:
        create_workspace(api, root)
        (outcome,) = drive(api, "deploy", "commit-1", root=root)
        assert outcome["result"] == "ok", outcome
        definitions = _definitions(api, "fleet-smollm2-135m")
    assert set(definitions) == {"Server.*"}
    cls = definitions["Server.*"]
    assert cls.method_definitions["serve"].webhook_config.type == api_pb2.WEBHOOK_TYPE_WEB_SERVER
    assert all(fn.block_network for fn in _ranked(cls))
    # restrict_modal_access (``untrusted`` on the wire) stays off: the class commits its compile cache.
    assert not any(fn.untrusted for fn in _ranked(cls))
    assert not cls.is_server


def test_a_server_serves_with_its_network_open_because_the_model_allows_egress(warm_fleet: Deployed) -> None:
    for name in EXAMPLE_MODELS:
        server = _definitions(warm_fleet.api, f"fleet-{name}")["Server"]
        assert server.is_server
        assert not any(fn.block_network or fn.untrusted for fn in _ranked(server)), name


def test_a_server_with_no_container_answers_503_boots_and_then_serves(tmp_path: Path) -> None:
    root = _fleet_root(tmp_path, models=["smollm2-135m"])
    toml = root / "models" / "smollm2-135m" / "model.toml"
    toml.write_text(_as_server(toml.read_text()))
    served = "smollm2-135m"
    with FakeEndpoint(Behaviour(auth=False, served_names=[served])) as upstream, ModalApiRecorder() as api:
        create_workspace(api, root)
        settings = FrontSettings(upstream_url=upstream.url, boot_seconds=0.5)
        with ModalWebFront(api, settings) as front:
            drive(api, "deploy", "commit-1", "smollm2-135m", root=root)
            url = drive(api, "endpoint", "smollm2-135m", root=root)
            credentials = mint_token(api, api.state.environment)
            assert httpx.get(f"{url}/health", timeout=10).status_code == 401  # proxy auth on a Server too
            first = httpx.get(f"{url}/health", headers=credentials.headers(), timeout=10)
            assert first.status_code == 503  # no container yet: Modal does not hold the request
            seen = probe_boot(url, credentials, served, timeout=60)  # the probe retries 503s
            assert seen.boot == "cold"
            health = httpx.get(f"{url}/health", headers=credentials.headers(), timeout=10).json()
            assert health["snapshot"] == "gpu"  # read from the definition: memory + GPU snapshot
            assert not front.redirects  # a Server's requests are never turned into 303s
            assert len(front.boots) == 1


class _SlowUpstream(BaseHTTPRequestHandler):
    """vLLM's stand-in: /health at once, a POST streams for ~1.5 s (long enough to overlap another)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", "30")
        self.end_headers()
        for _ in range(3):
            time.sleep(0.5)
            self.wfile.write(b"data: x\n\n\n\n")
            self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_server_answers_429_above_its_max_concurrency(tmp_path: Path) -> None:
    root = _fleet_root(tmp_path, models=["smollm2-135m"])
    toml = root / "models" / "smollm2-135m" / "model.toml"
    text = _as_server(toml.read_text())
    text = text.replace("target_concurrent_inputs = 32", "target_concurrent_inputs = 1")
    toml.write_text(text.replace("max_concurrent_inputs = 64", "max_concurrent_inputs = 1"))
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _SlowUpstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        with ModalApiRecorder() as api:
            create_workspace(api, root)
            settings = FrontSettings(upstream_url=f"http://127.0.0.1:{upstream.server_address[1]}")
            with ModalWebFront(api, settings) as front:
                drive(api, "deploy", "commit-1", "smollm2-135m", root=root)
                url = drive(api, "endpoint", "smollm2-135m", root=root)
                headers = mint_token(api, api.state.environment).headers()
                deadline = time.monotonic() + 30
                while httpx.get(f"{url}/health", headers=headers, timeout=10).status_code == 503:
                    assert time.monotonic() < deadline, "the Server's container never came up"
                    time.sleep(0.1)
                statuses: list[int] = []
                first = threading.Thread(
                    target=lambda: statuses.append(
                        httpx.post(f"{url}/v1/completions", json={}, headers=headers, timeout=30).status_code
                    )
                )
                first.start()
                while not front._in_flight.get(api.apps()["fleet-smollm2-135m"].app_id):
                    assert time.monotonic() < deadline, "the first request never reached the container"
                    time.sleep(0.02)
                second = httpx.post(f"{url}/v1/completions", json={}, headers=headers, timeout=30)
                first.join(timeout=30)
        assert second.status_code == 429  # one in flight = max_concurrency: Modal refuses, it does not queue
        assert statuses == [200]
    finally:
        upstream.shutdown()
