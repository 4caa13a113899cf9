"""The local target: the fleet as processes on this machine, state in ``.fleet/``.

Each model runs under its own supervisor process (vLLM child + the edge in token
mode), started detached so the fleet keeps running after the command returns, as a
deploy on Modal does. Nothing here autoscales: one engine per model. A model whose
``[privacy] egress`` is "blocked" (the default) serves from a network namespace with
loopback only, or not at all (``egress.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from modelfleet.catalog import CatalogModel
from modelfleet.errors import FleetError
from modelfleet.runtime.netns import namespace_refusal
from modelfleet.runtime.ports import first_free_port
from modelfleet.runtime.tokens import Credentials
from modelfleet.settings import FleetSettings
from modelfleet.state import DeployRecord, FleetState, load_state_file, save_state_file
from modelfleet.targets.base import DeployOutcome, ModelStatus, OnEvent, Result, ignore_event
from modelfleet.targets.local import egress
from modelfleet.targets.local.processes import is_alive, stop_group, tree_rss_bytes
from modelfleet.targets.local.runs import LocalRun, RunBook
from modelfleet.volumes import local_volume_root, seed
from modelfleet.volumes.inventory import WeightsVolume

if TYPE_CHECKING:
    from modelfleet.targets.local.gateway_process import GatewayRun

HEALTH_POLL_SECONDS = 0.5


class LocalTarget:
    """Seed, start, check and stop models on this machine."""

    name = "local"
    requires_clean_tree = False
    # vLLM on CPU has no sleep mode, so there is nothing to snapshot: `fleet snapshot`
    # measures the plain cold start instead.
    supports_snapshots = False

    def __init__(self, settings: FleetSettings) -> None:
        self.settings = settings
        self.runs = RunBook(settings.state_path)
        self.deployed_file = settings.state_path / "deployed.json"

    # -- seeding -------------------------------------------------------------------------

    def seed(self, models: list[CatalogModel], *, on_event: OnEvent = ignore_event) -> list[DeployOutcome]:
        """Seed each model into the local weights volume; a seeded model is only verified."""
        # Byte bars wanted; the seeder draws them only for a person at a terminal.
        return self._seed(models, on_event, progress=True)

    def _seed(self, models: list[CatalogModel], on_event: OnEvent, *, progress: bool) -> list[DeployOutcome]:
        outcomes = []
        for model in models:
            started = time.monotonic()
            on_event(model.name, "seeding", "")
            try:
                result = seed(model, local_volume_root(self.settings), progress=progress)
            except FleetError as error:
                outcomes.append(self._outcome(model, "failed", started, detail=str(error)))
                continue
            detail = "already seeded, verified" if result.skipped else f"{result.bytes / 1e6:,.0f} MB seeded"
            outcomes.append(self._outcome(model, "ok", started, detail=detail))
        return outcomes

    # -- deploy ----------------------------------------------------------------------------

    def deploy(self, models: list[CatalogModel], *, tag: str, on_event: OnEvent = ignore_event) -> list[DeployOutcome]:
        """Start every model that may run locally; running ones with the same spec are left alone."""
        outcomes: dict[str, DeployOutcome] = {}
        starting: list[tuple[CatalogModel, float]] = []
        for model in models:
            started = time.monotonic()
            if not model.spec.local.enabled:
                outcomes[model.name] = self._outcome(
                    model, "skipped", started, detail=f"local.enabled is false (declared for {model.spec.gpu.type})"
                )
                continue
            refused = self._egress_refusal(model)
            if refused:
                outcomes[model.name] = self._outcome(model, "failed", started, detail=refused)
                continue
            run = self.runs.read(model.name)
            if run and is_alive(run.supervisor_pid):
                if run.spec_hash == model.spec_hash() and run.state in ("ready", "starting", "restarting"):
                    outcomes[model.name] = self._outcome(
                        model, "unchanged", started, url=run.url, detail="already running"
                    )
                    continue
                on_event(model.name, "restarting", "spec changed")
                self._stop(model.name)
            try:
                self._seed_one(model, on_event)
                self._spawn(model)
            except (FleetError, OSError) as error:
                outcomes[model.name] = self._outcome(model, "failed", started, detail=str(error))
                continue
            on_event(model.name, "starting", "vLLM is loading")
            starting.append((model, started))
        for model, started in starting:
            outcomes[model.name] = self._wait_ready(model, started, tag, on_event)
        self.sync_gateway()
        return [outcomes[m.name] for m in models]

    def deploy_gateway(self, *, tag: str) -> DeployOutcome | None:
        """None: ``deploy`` (and ``fleet up``) already started or restarted the gateway (``sync_gateway``)."""
        return None

    def sync_gateway(self) -> GatewayRun | None:
        """The fleet's one gateway in front of whatever edges run now (``gateway_process.sync_gateway``).

        Never fails the models' outcomes: a gateway that did not start comes back with
        ``last_error`` set (``fleet up`` and ``fleet status`` show it).
        """
        # Imported here, not at the top: the module is also run as ``python -m`` (the gateway
        # process), and runpy warns when the package already imported it.
        from modelfleet.targets.local.gateway_process import GatewayRun, sync_gateway

        try:
            return sync_gateway(self.settings)
        except (FleetError, OSError) as error:
            run = GatewayRun(pid=0, host=self.settings.gateway.host, port=self.settings.gateway.port, upstreams={})
            run.last_error = str(error)
            return run

    def gateway(self) -> GatewayRun | None:
        """The gateway's record, or None when none was started."""
        from modelfleet.targets.local.gateway_process import GatewayBook

        return GatewayBook(self.settings.state_path).read()

    def _egress_refusal(self, model: CatalogModel) -> str:
        """The refusal of a blocked model where network namespaces are refused; "" when it may start.

        Asked before anything starts, so ``fleet up`` fails at once with the reason, not
        after seeding; the supervisor refuses the same way should it be started by hand.
        """
        if model.spec.privacy.egress != "blocked":
            return ""
        reason = namespace_refusal()
        return egress.refusal(model, reason) if reason else ""

    def _seed_one(self, model: CatalogModel, on_event: OnEvent) -> None:
        on_event(model.name, "seeding", "")
        # Under deploy's live table: no second live display for byte bars.
        (outcome,) = self._seed([model], on_event, progress=False)
        if outcome.result == "failed":
            raise FleetError(outcome.detail)

    def _spawn(self, model: CatalogModel) -> None:
        taken = {r.edge_port for r in self.runs.all() if r.model != model.name and is_alive(r.supervisor_pid)}
        port = first_free_port(self.settings.local_base_port, taken)
        log = self.runs.log_path(model.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "modelfleet.targets.local.supervisor", model.name, "--port", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=self.settings.root,
                env={**os.environ, "FLEET_ROOT": str(self.settings.root)},
                start_new_session=True,  # survives this command, like a deployed app
            )
        self.runs.write(
            LocalRun(model=model.name, spec_hash=model.spec_hash(), supervisor_pid=process.pid, edge_port=port)
        )

    def _wait_ready(self, model: CatalogModel, started: float, tag: str, on_event: OnEvent) -> DeployOutcome:
        deadline = time.monotonic() + model.spec.scaling.startup_timeout
        while time.monotonic() < deadline:
            run = self.runs.read(model.name)
            if run is None or not is_alive(run.supervisor_pid) or run.state == "failed":
                reason = run.last_error if run and run.last_error else self._log_tail(model.name)
                self._stop(model.name)
                return self._outcome(model, "failed", started, detail=reason)
            if run.state == "ready":
                self._record_deploy(model, tag)
                on_event(model.name, "ready", run.url)
                # An allowed model on a machine without namespaces starts with the warning beside its URL.
                warning = f"{run.url} (egress: {run.egress})" if "warning" in run.egress else ""
                return self._outcome(model, "ok", started, url=run.url, version=tag, detail=warning)
            time.sleep(HEALTH_POLL_SECONDS)
        self._stop(model.name)
        return self._outcome(
            model, "failed", started, detail=f"not healthy after startup_timeout={model.spec.scaling.startup_timeout}s"
        )

    def _record_deploy(self, model: CatalogModel, tag: str) -> None:
        state = self.deployed_state()
        state.models[model.name] = DeployRecord(
            app=self.settings.app_name(model.name),
            spec_hash=model.spec_hash(),
            spec=model.spec.model_dump(mode="json"),
            tag=tag,
            version=tag,
        )
        self.deployed_file.parent.mkdir(parents=True, exist_ok=True)
        save_state_file(state, self.deployed_file)

    # -- state, status, teardown ----------------------------------------------------------------

    def deployed_state(self) -> FleetState:
        """What was started here (``.fleet/deployed.json``), for ``fleet plan``."""
        if not self.deployed_file.is_file():
            return FleetState()
        return load_state_file(self.deployed_file)

    def endpoint(self, model: CatalogModel) -> str:
        """The running edge's URL, or an error saying how to start the model."""
        run = self.runs.read(model.name)
        if run is None or not is_alive(run.supervisor_pid):
            raise FleetError(f"{model.name} is not running on the local target: run `fleet up {model.name}`")
        return run.url

    def status(self, models: list[CatalogModel]) -> list[ModelStatus]:
        """Model, URL, pid, health, uptime, memory and restarts of every local run."""
        statuses = []
        for model in models:
            run = self.runs.read(model.name)
            if run is None:
                if model.spec.local.enabled:
                    statuses.append(ModelStatus(model.name, "", "stopped"))
                continue
            alive = is_alive(run.supervisor_pid)
            health = self._health(run.url) if alive else "down"
            state = run.state if alive else "dead"
            statuses.append(
                ModelStatus(
                    model.name,
                    run.url,
                    state,
                    {
                        "pid": str(run.engine_pid or run.supervisor_pid),
                        "health": health,
                        "uptime": _duration(time.time() - run.started_at) if alive else "-",
                        "memory": f"{tree_rss_bytes(run.supervisor_pid) / 2**30:.2f} GiB" if alive else "-",
                        "restarts": str(run.restarts),
                        "egress": run.egress or "-",
                        "error": run.last_error,
                    },
                )
            )
        return statuses

    def teardown(self, models: list[CatalogModel]) -> list[DeployOutcome]:
        """Stop engines and edges; no process or run record is left behind."""
        outcomes = []
        for model in models:
            started = time.monotonic()
            run = self.runs.read(model.name)
            if run is None:
                outcomes.append(self._outcome(model, "unchanged", started, detail="not running"))
                continue
            self._stop(model.name)
            outcomes.append(self._outcome(model, "ok", started, detail="stopped"))
        # The gateway follows the edges: restarted for the ones left, stopped with the last.
        self.sync_gateway()
        return outcomes

    def force_cold_start(self, model: CatalogModel) -> int:
        """Kill the model's engine and return once it is gone (1, or 0 when none ran); the supervisor boots a fresh one.

        The local stand-in for scaling to zero: the next request meets a cold boot
        (it counts as one of the supervisor's restarts).
        """
        run = self.runs.read(model.name)
        if run is None or not is_alive(run.supervisor_pid):
            raise FleetError(f"{model.name} is not running on the local target: run `fleet up {model.name}`")
        if run.engine_pid and is_alive(run.engine_pid):
            stop_group(run.engine_pid, grace=30.0)
            return 1
        return 0

    def rollback(self, model: CatalogModel, to_version: str | None = None) -> DeployOutcome:
        """A "skipped" outcome: processes on this machine serve the working tree, and no earlier version is kept.

        Restarting with an older spec is a ``git checkout`` and ``fleet up`` away, which the
        fleet must not do to a user's working tree by itself.
        """
        return DeployOutcome(
            model=model.name,
            app=self.settings.app_name(model.name),
            result="skipped",
            seconds=0.0,
            detail=(
                "the local target has no rollback: it keeps no versions, only the working tree; "
                "rollback needs FLEET_TARGET=modal (or target = 'modal' in fleet.toml)"
            ),
        )

    def weights_volume(self) -> WeightsVolume:
        """The local weights volume: the folder under ``.fleet/volumes/`` named like the Modal Volume."""
        root = local_volume_root(self.settings)
        return WeightsVolume(name=root.name, root=root)

    def log_path(self, model: CatalogModel) -> Path:
        """Where the model's supervisor and vLLM write their output."""
        return self.runs.log_path(model.name)

    @contextmanager
    def temporary_credentials(self, purpose: str) -> Iterator[Credentials]:
        """A token that exists only for one command (``fleet call``, ``fleet smoke``), then is revoked."""
        from modelfleet.runtime.tokens import TokenStore

        store = TokenStore(self.settings.tokens_path)
        name = f"{purpose}-{os.getpid()}-{int(time.time())}"
        key, secret = store.create(name)
        try:
            yield Credentials(key, secret)
        finally:
            store.revoke(name)

    def _stop(self, model: str) -> None:
        run = self.runs.read(model)
        if run is not None:
            stop_group(run.supervisor_pid)
            if run.engine_pid:
                stop_group(run.engine_pid, grace=5.0)
        self.runs.forget(model)
        # vLLM leaves its socket file behind when killed; a stopped model leaves nothing.
        self.runs.socket_path(model).unlink(missing_ok=True)

    def _health(self, url: str) -> str:
        try:
            response = httpx.get(f"{url}/health", timeout=3.0)
        except httpx.HTTPError:
            return "unreachable"
        return "healthy" if response.status_code == 200 else f"{response.status_code}"

    def _log_tail(self, model: str, lines: int = 15) -> str:
        try:
            text = self.runs.log_path(model).read_text(errors="replace")
        except OSError:
            return "the supervisor exited and left no log"
        return "\n".join(text.splitlines()[-lines:])

    def _outcome(
        self, model: CatalogModel, result: Result, started: float, *, url: str = "", version: str = "", detail: str = ""
    ) -> DeployOutcome:
        return DeployOutcome(
            model=model.name,
            app=self.settings.app_name(model.name),
            result=result,
            seconds=time.monotonic() - started,
            version=version,
            url=url,
            detail=detail,
        )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
