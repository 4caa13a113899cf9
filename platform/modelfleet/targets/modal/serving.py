"""What a serving container does, hook by hook: the runtime's engine and edge, no new engine code.

- before the snapshot (``enter(snap=True)``): start vLLM with sleep mode, wait for
  /health, send warm-up requests, put it to sleep -- Modal then snapshots CPU and
  GPU memory with a warmed, sleeping server in it;
- after the snapshot, or at a plain cold start (``enter(snap=False)``): wake the
  engine if one exists, else start it, and record how this container booted;
- the web endpoint: the runtime edge in front of vLLM, so the dev routes sleep mode
  needs (/sleep, /wake_up, /collective_rpc, ...) are never reachable from outside;
- exit: stop vLLM.

The boot kind and seconds go out on the edge's ``/health`` JSON, so a snapshot job
can tell a restore from a cold start. This module imports no Modal code: the hooks
in ``entry`` call it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Literal

from modelfleet.runtime.edge import EdgeConfig, build_edge
from modelfleet.runtime.engine import Engine
from modelfleet.targets.modal.bundle import ModelBundle

EDGE_PORT = 8000  # what Modal's web server forwards to
VLLM_PORT = 8001  # vLLM on 127.0.0.1 only: reachable through the edge alone
# The edge binds within a second of the web-server hook; vLLM is already up by then
# (the enter hooks waited for it), so a long wait here would only hide a broken edge.
EDGE_STARTUP_TIMEOUT = 120
LOG_PATH = Path("/tmp/modelfleet/vllm.log")
TASK_ID_ENV = "MODAL_TASK_ID"

BootKind = Literal["cold", "restore"]


def boot_kind(engine_exists: bool, snapshot_task: str | None, current_task: str | None) -> BootKind:
    """How this container came up.

    An engine found by the post-snapshot hook was started before a snapshot. It is a
    restore unless this is the very container that took the snapshot: that one paid
    the full start and simply resumes (Modal hands restored containers a new task id).
    """
    if not engine_exists:
        return "cold"
    if snapshot_task and current_task and snapshot_task == current_task:
        return "cold"
    return "restore"


def snapshot_engine(bundle: ModelBundle) -> bool:
    """Whether the engine starts before the snapshot: only a GPU snapshot can hold its GPU memory."""
    return bundle.spec.snapshot.enabled and bundle.spec.snapshot.gpu_snapshot


class ServingRuntime:
    """One container's engine, edge and boot record."""

    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle
        self.engine: Engine | None = None
        self.snapshot_task: str | None = None
        self.prepare_seconds = 0.0
        self.boot: dict[str, object] = {}
        self.ready = False
        self._edge_thread: threading.Thread | None = None

    def _new_engine(self) -> Engine:
        return Engine.from_spec(
            self.bundle.spec,
            model_path=Path(self.bundle.checkpoint),
            served_name=self.bundle.served_name,
            platform="gpu",
            log_path=LOG_PATH,
            port=VLLM_PORT,
        )

    def _start_engine(self) -> Engine:
        engine = self._new_engine()
        engine.start()
        engine.wait_healthy(timeout=self.bundle.spec.scaling.startup_timeout)
        return engine

    def prepare_snapshot(self) -> None:
        """Before the snapshot: a warmed engine put to sleep (nothing when snapshots are off)."""
        if not snapshot_engine(self.bundle):
            return
        started = time.monotonic()
        engine = self._start_engine()
        snapshot = self.bundle.spec.snapshot
        engine.warm_up(snapshot.warmup_requests)
        engine.sleep(snapshot.sleep_level)
        self.engine = engine
        self.snapshot_task = os.environ.get(TASK_ID_ENV)
        self.prepare_seconds = time.monotonic() - started

    def start(self) -> None:
        """After the snapshot (or at a cold start): a serving engine, and the boot recorded."""
        started = time.monotonic()
        kind = boot_kind(self.engine is not None, self.snapshot_task, os.environ.get(TASK_ID_ENV))
        if self.engine is None:
            self.engine = self._start_engine()
        else:
            self.engine.wake()
        seconds = time.monotonic() - started + (self.prepare_seconds if kind == "cold" else 0.0)
        self.boot = {"boot": kind, "boot_seconds": round(seconds, 2), "snapshot": snapshot_engine(self.bundle)}
        self.ready = True

    def health_info(self) -> dict[str, object]:
        """Extra /health JSON: which model, and how this container booted."""
        return {"model": self.bundle.served_name, **self.boot}

    def start_edge(self) -> None:
        """Serve the edge on ``EDGE_PORT`` in a background thread (Modal waits for the port)."""
        import uvicorn

        assert self.engine is not None, "the enter hooks start the engine before the web server"
        config = EdgeConfig(
            upstream_url=self.engine.url,
            # Modal's proxy checks Modal-Key/Modal-Secret before a request reaches the container.
            auth_mode="public" if self.bundle.spec.auth.public else "modal-proxy",
            upstream_timeout=float(self.bundle.spec.scaling.timeout),
            health_info=self.health_info,
            is_ready=lambda: self.ready,
        )
        server = uvicorn.Server(uvicorn.Config(build_edge(config), host="0.0.0.0", port=EDGE_PORT, log_level="warning"))
        self._edge_thread = threading.Thread(target=server.run, name="modelfleet-edge", daemon=True)
        self._edge_thread.start()

    def stop(self) -> None:
        """Stop vLLM (the edge thread dies with the container)."""
        self.ready = False
        if self.engine is not None:
            self.engine.stop()
