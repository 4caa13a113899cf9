"""The local supervisor's edge: the runtime's one server builder, and a gate that follows the engine.

The engine here is a real process that exits at once, as vLLM does on a bad flag or
missing weights; the edge is the real server the supervisor serves, on a free port.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from modelfleet.catalog import load_catalog
from modelfleet.runtime.edge import auth_mode_for
from modelfleet.runtime.engine import Engine
from modelfleet.runtime.ports import free_port
from modelfleet.settings import FleetSettings
from modelfleet.targets.local.runs import RunBook
from modelfleet.targets.local.supervisor import Supervisor
from tests.support.waiting import wait_until


@pytest.fixture
def supervisor(
    write_model: Callable[[str, str], Path], fleet_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> Supervisor:
    """A supervisor of a model that gets no restart, on a free edge port."""
    write_model("tiny", _MODEL)
    monkeypatch.setenv("FLEET_LOCAL_MAX_RESTARTS", "0")
    settings = FleetSettings()
    return Supervisor(settings, load_catalog(settings).require("tiny"), free_port())


_MODEL = """
[weights]
source = "huggingface"
repo = "org/tiny"
revision = "0123456789abcdef0123456789abcdef01234567"
params_billion = 8.0
architecture = { num_hidden_layers = 32, num_key_value_heads = 8, head_dim = 128 }

[gpu]
type = "H100"

[vllm]
max_model_len = 8192
max_num_seqs = 64
"""


@contextmanager
def serving(supervisor: Supervisor) -> Iterator[str]:
    """The supervisor's own edge server in a thread; yields its URL."""
    server = supervisor.edge_server()
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_until(lambda: server.started or not thread.is_alive(), 20), "the edge did not start"
    try:
        yield f"http://127.0.0.1:{supervisor.run.edge_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_the_local_edge_serves_with_the_settings_the_benchmarks_measured(supervisor: Supervisor) -> None:
    # Before: the supervisor built its own uvicorn.Config (asyncio, h11, an access log line per request).
    config = supervisor.edge_server().config
    assert (config.loop, config.http, config.access_log) == ("uvloop", "httptools", False)


def test_a_local_model_checks_tokens_itself_unless_declared_public(supervisor: Supervisor) -> None:
    spec = supervisor.model.spec
    assert auth_mode_for(spec, platform_checks_tokens=False) == "tokens"
    assert auth_mode_for(spec, platform_checks_tokens=True) == "modal-proxy"
    public = spec.model_copy(update={"auth": spec.auth.model_copy(update={"public": True})})
    assert auth_mode_for(public, platform_checks_tokens=False) == "public"


def test_an_engine_that_fails_without_restarts_left_makes_the_edge_say_so(supervisor: Supervisor) -> None:
    failing = [sys.executable, "-c", "import sys; print('ValueError: no weights'); sys.exit(3)"]
    supervisor.engine = Engine(failing, env={}, port=supervisor.run.engine_port, log_path=supervisor.engine.log_path)
    with serving(supervisor) as url:
        starting = httpx.get(f"{url}/health", timeout=10)
        assert starting.status_code == 503 and starting.json()["status"] == "starting"
        supervisor.keep_engine_alive()  # returns once it gives up: no restarts allowed
        health = httpx.get(f"{url}/health", timeout=10)
        chat = httpx.post(f"{url}/v1/chat/completions", json={"model": "tiny", "messages": []}, timeout=10)
    assert health.status_code == 503 and health.json()["status"] == "failed"
    assert chat.status_code == 401  # tokens first: nothing about the engine reaches an unauthenticated caller
    run = RunBook(supervisor.settings.state_path).read("tiny")
    assert run is not None and run.state == "failed" and "exited with code 3" in run.last_error
