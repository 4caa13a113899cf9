"""One model's supervisor on the local target: vLLM as a child, the edge in front.

Run as ``python -m modelfleet.targets.local.supervisor MODEL --port N`` (detached by
``fleet up``). It starts the engine through the runtime -- the same code the Modal
container runs -- serves the edge (``edge.edge_server``, as the container does) in token
mode, restarts a crashed engine with exponential backoff up to ``local_max_restarts``,
and records everything in the model's run file. The edge's gate follows the engine
(starting, ready, failed), so while the engine is down the edge answers 503 by itself.
vLLM serves on a Unix socket the edge relays to; with ``[privacy] egress = "blocked"`` it
runs in a network namespace with loopback only, probed after every start (``egress.py``).
SIGTERM drains the edge, then stops the engine, then removes nothing: ``fleet down``
forgets the run once the process is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading
import time

import uvicorn

from modelfleet.catalog import CatalogModel, load_catalog
from modelfleet.runtime.edge import EdgeConfig, EdgeGate, auth_mode_for, edge_server
from modelfleet.runtime.engine import Engine
from modelfleet.runtime.netns import namespace_refusal
from modelfleet.runtime.tokens import TokenStore
from modelfleet.settings import FleetSettings
from modelfleet.targets.local import egress
from modelfleet.targets.local.runs import LocalRun, RunBook, RunState
from modelfleet.volumes import checkpoint_dir, local_volume_root

FIRST_BACKOFF_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 60.0


class Supervisor:
    """Keeps one model's engine alive behind its edge until told to stop."""

    def __init__(self, settings: FleetSettings, model: CatalogModel, edge_port: int) -> None:
        self.settings = settings
        self.model = model
        self.book = RunBook(settings.state_path)
        self.stopping = threading.Event()
        self.run = self.book.read(model.name) or LocalRun(
            model=model.name, spec_hash=model.spec_hash(), supervisor_pid=0, edge_port=edge_port
        )
        self.run.supervisor_pid = os.getpid()
        self.run.edge_port = edge_port
        # vLLM serves on a Unix socket: no engine port (the edge is the one TCP port).
        self.run.engine_port = 0
        self.socket_path = self.book.socket_path(model.name)
        self.isolate = model.spec.privacy.egress == "blocked"
        # Why this machine refuses a network namespace (None: it grants one); asked once.
        self.namespace_refusal = namespace_refusal()
        self.engine = self._new_engine()
        self.boot_seconds = 0.0
        # What the edge knows of the engine; only the watcher thread marks it.
        self.gate = EdgeGate("starting")

    def _new_engine(self) -> Engine:
        spec = self.model.spec
        return Engine.from_spec(
            spec,
            model_path=checkpoint_dir(self.model, local_volume_root(self.settings)),
            served_name=self.model.served_name,
            platform="cpu" if spec.local.device == "cpu" else "gpu",
            log_path=self.book.log_path(self.model.name),
            socket_path=self.socket_path,
            isolate=self.isolate,
        )

    def health_info(self) -> dict[str, object]:
        """What the edge's /health adds: boot kind (always cold here: no snapshots on CPU), boot time, restarts."""
        return {
            "model": self.model.served_name,
            "boot": "cold",
            "boot_seconds": round(self.boot_seconds, 2),
            "restarts": self.run.restarts,
            "state": self.run.state,
        }

    def refuse_without_namespace(self) -> bool:
        """A blocked model on a machine without namespaces: mark it failed with the reason; True when refused."""
        if self.namespace_refusal is None:
            self.run.egress = "blocked (verifying)" if self.isolate else egress.ALLOWED
            return False
        if not self.isolate:
            self.run.egress = egress.allowed_warning(self.namespace_refusal)
            return False
        self.run.last_error = egress.refusal(self.model, self.namespace_refusal)
        self.run.egress = "blocked (refused: no network namespace)"
        self.gate.mark("failed")
        self._save("failed")
        return True

    def check_isolation(self) -> bool:
        """After each start: an isolated engine's namespace probed (True when isolated or not asked to be)."""
        if not self.isolate:
            return True
        isolated, probe = egress.verify_isolation(self.engine)
        self.run.egress_probe = probe
        self.run.egress = egress.VERIFIED if isolated else "blocked (NOT verified)"
        if not isolated:
            self.run.last_error = (
                f"privacy.egress = 'blocked' could not be verified, so the engine was stopped: {probe}"
            )
        return isolated

    def keep_engine_alive(self) -> None:
        """Start the engine; on a crash restart it with backoff, until stopped or out of restarts."""
        if self.refuse_without_namespace():
            return
        backoff = FIRST_BACKOFF_SECONDS
        while not self.stopping.is_set():
            started = time.monotonic()
            self.gate.mark("starting")
            try:
                self.engine.start()
                self.run.engine_pid = self.engine.pid or 0
                self._save("starting" if self.run.restarts == 0 else "restarting")
                self.engine.wait_healthy(timeout=self.model.spec.scaling.startup_timeout)
            except Exception as error:  # the reason is in the message (vLLM's log tail)
                if self.stopping.is_set():
                    return
                self.run.last_error = str(error)
                self.engine.stop()
            else:
                if not self.check_isolation():
                    # An engine whose isolation cannot be shown never serves; no restart would change that.
                    self.engine.stop()
                    self.gate.mark("failed")
                    self._save("failed")
                    return
                self.boot_seconds = time.monotonic() - started
                self.run.ready_at = time.time()
                self.run.last_error = ""
                self.gate.mark("ready")
                self._save("ready")
                backoff = FIRST_BACKOFF_SECONDS
                while not self.stopping.is_set() and self.engine.returncode is None:
                    self.stopping.wait(0.5)
                if self.stopping.is_set():
                    return
                self.run.last_error = f"vLLM exited with code {self.engine.returncode}"
                # Whatever is left of its process group (engine core, workers -- or the
                # whole server, if only its guardian died) must go before a new one binds the port.
                self.engine.stop(grace=5.0)
            self.gate.mark("starting")
            if self.run.restarts >= self.settings.local_max_restarts:
                self.gate.mark("failed")
                self._save("failed")
                return
            self.run.restarts += 1
            self._save("restarting")
            self.stopping.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            self.engine = self._new_engine()

    def edge_server(self) -> uvicorn.Server:
        """The edge in front of the engine's port: the runtime's one builder, tokens checked here, the gate ours."""
        config = EdgeConfig(
            upstream_url=self.engine.url,
            upstream_socket=str(self.socket_path),
            # No platform in front of this edge: it checks Modal-Key/Modal-Secret itself.
            auth_mode=auth_mode_for(self.model.spec, platform_checks_tokens=False),
            token_store=TokenStore(self.settings.tokens_path),
            health_info=self.health_info,
            gate=self.gate,
        )
        return edge_server(config, host="127.0.0.1", port=self.run.edge_port)

    def serve(self) -> None:
        """Serve the edge in this thread and the engine watcher beside it; on SIGTERM the edge drains, then vLLM stops."""
        server = self.edge_server()
        self._save("starting")
        watcher = threading.Thread(target=self.keep_engine_alive, name="engine-watcher", daemon=True)

        def stop(signum: int, frame: object) -> None:
            # While the edge serves, uvicorn holds SIGTERM/SIGINT and drains first; it then
            # raises the signal again for this handler (see ``edge_server``). A signal before
            # it serves lands here directly, and the server then stops as soon as it started.
            self.stopping.set()
            server.should_exit = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        watcher.start()
        server.run()
        self.stopping.set()
        self._save("stopping")
        self.engine.stop()
        watcher.join(timeout=30)

    def _save(self, state: RunState) -> None:
        self.run.state = state
        self.book.write(self.run)


def main() -> None:
    """Entry point of the detached supervisor process."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = FleetSettings()
    model = load_catalog(settings).require(args.model)
    supervisor = Supervisor(settings, model, args.port)
    with contextlib.suppress(KeyboardInterrupt):
        supervisor.serve()


if __name__ == "__main__":
    main()
