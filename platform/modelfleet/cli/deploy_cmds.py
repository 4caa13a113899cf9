"""``fleet deploy`` / ``fleet deploy-all``: the same verbs on every target.

Before anything changes, the plan is shown and confirmed (``--yes`` for CI); while
models deploy in parallel a live view shows each one's stage; at the end a table
says what happened to each model, and the exit code is 1 if any failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.live import Live
from rich.table import Table

from modelfleet.catalog import Catalog, CatalogModel
from modelfleet.cli.common import (
    UserError,
    console,
    load_settings_and_catalog,
    print_problems,
    user_errors,
)
from modelfleet.cli.plan_cmds import print_plan
from modelfleet.gitinfo import GitError, deploy_tag
from modelfleet.plan import make_plan
from modelfleet.postdeploy.report import record_deploys
from modelfleet.settings import FleetSettings
from modelfleet.targets import get_target
from modelfleet.targets.base import DeployOutcome, OnEvent, Target
from modelfleet.terminal import is_interactive

_RESULT_STYLE = {"ok": "green", "failed": "red", "skipped": "yellow", "unchanged": "dim"}


def deploy(
    names: list[str] = typer.Argument(help="Model folder names."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (CI)."),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Deploy uncommitted changes (tagged -dirty)."),
    gateway: bool = typer.Option(
        True,
        "--gateway/--no-gateway",
        help="Redeploy the fleet gateway after the models (Modal). CI's matrix jobs pass --no-gateway and "
        "deploy it once after all of them (`fleet gateway deploy`), so parallel jobs never race to publish it.",
    ),
) -> None:
    """Deploy (Modal) or start (local) the named models."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        models = [catalog.require(name) for name in names]
        run_deploy(settings, catalog, models, yes=yes, allow_dirty=allow_dirty, gateway=gateway)


def deploy_all(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (CI)."),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Deploy uncommitted changes (tagged -dirty)."),
    gateway: bool = typer.Option(
        True,
        "--gateway/--no-gateway",
        help="Redeploy the fleet gateway after the models (Modal). CI's matrix jobs pass --no-gateway and "
        "deploy it once after all of them (`fleet gateway deploy`), so parallel jobs never race to publish it.",
    ),
    changed_since: str | None = typer.Option(
        None,
        "--changed-since",
        help="Only models whose folder, or the platform code they use, changed since this git ref.",
    ),
) -> None:
    """Deploy every valid model (or only the changed ones); broken folders are reported, not deployed."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        print_problems(catalog)
        models = sorted(catalog.models.values(), key=lambda m: m.name)
        if changed_since:
            from modelfleet.changes import detect_changes

            affected = set(detect_changes(settings.root, changed_since, catalog).affected)
            models = [m for m in models if m.name in affected]
            console.print(f"changed since {changed_since}: {', '.join(m.name for m in models) or 'nothing'}")
        if not models:
            console.print("nothing to deploy")
            raise typer.Exit(1 if catalog.errors else 0)
        failed = run_deploy(
            settings, catalog, models, yes=yes, allow_dirty=allow_dirty, exit_on_failure=False, gateway=gateway
        )
        if failed or catalog.errors:
            raise typer.Exit(1)


def run_deploy(
    settings: FleetSettings,
    catalog: Catalog,
    models: list[CatalogModel],
    *,
    yes: bool,
    allow_dirty: bool,
    exit_on_failure: bool = True,
    gateway: bool = True,
) -> bool:
    target: Target = get_target(settings)
    tag = deploy_tag(settings.root, allow_dirty=allow_dirty) if target.requires_clean_tree else _local_tag(settings)
    state = target.deployed_state()
    print_plan(make_plan(catalog, state, settings, only=[m.name for m in models]))
    if not yes:
        if not is_interactive():
            raise UserError("refusing to deploy without confirmation when not at a terminal: pass --yes")
        typer.confirm(f"deploy {len(models)} model(s) to {target.name} tagged {tag}?", abort=True)
    with _live_progress(models, "deploy") as on_event:
        outcomes = target.deploy(models, tag=tag, on_event=on_event)
    # Each deployed model's report starts here; snapshot, smoke and rollback add to it.
    record_deploys(settings, outcomes, target=target.name)
    print_outcomes(outcomes, title=f"deploy ({target.name}, tag {tag})")
    failed = any(o.result == "failed" for o in outcomes)
    # The fleet gateway follows the models (Modal: its own app, redeployed with their URLs;
    # the local target starts it inside deploy itself and answers None).
    redeployed = target.deploy_gateway(tag=tag) if gateway and any(o.result == "ok" for o in outcomes) else None
    if redeployed is not None:
        print_outcomes([redeployed], title=f"gateway ({target.name})")
        failed = failed or redeployed.result == "failed"
    if failed and exit_on_failure:
        raise typer.Exit(1)
    return failed


def _local_tag(settings: FleetSettings) -> str:
    """The local target serves the working tree as it is; outside git it is just "local"."""
    try:
        return deploy_tag(settings.root, allow_dirty=True)
    except GitError:
        return "local"


def print_outcomes(outcomes: list[DeployOutcome], *, title: str) -> None:
    """The after-table: model, app, version, result, duration, detail."""
    table = Table(title=title)
    for column in ("model", "app", "version", "result", "duration", "url / detail"):
        table.add_column(column)
    for o in outcomes:
        style = _RESULT_STYLE.get(o.result, "")
        table.add_row(
            o.model, o.app, o.version, f"[{style}]{o.result}[/{style}]", f"{o.seconds:.1f}s", o.detail or o.url
        )
    console.print(table)
    counts = {r: sum(1 for o in outcomes if o.result == r) for r in _RESULT_STYLE}
    console.print(", ".join(f"{n} {r}" for r, n in counts.items() if n))


@contextmanager
def _live_progress(models: list[CatalogModel], verb: str) -> Iterator[OnEvent]:
    """A live table of each model's stage at a terminal; one plain line per event in CI logs."""
    stages = {m.name: ("waiting", "") for m in models}
    started = time.monotonic()
    lock = threading.Lock()

    def render() -> Table:
        table = Table(title=f"{verb} in progress ({time.monotonic() - started:.0f}s)")
        for column in ("model", "stage", "detail"):
            table.add_column(column)
        for name, (stage, detail) in stages.items():
            table.add_row(name, stage, detail)
        return table

    if not is_interactive():

        def on_plain_event(model: str, stage: str, detail: str) -> None:
            with lock:
                console.print(
                    f"[{time.monotonic() - started:6.1f}s] {model}: {stage} {detail}".rstrip(), highlight=False
                )

        yield on_plain_event
        return
    with Live(render(), console=console, refresh_per_second=4, transient=True) as live:

        def on_event(model: str, stage: str, detail: str) -> None:
            with lock:
                stages[model] = (stage, detail)
                live.update(render())

        yield on_event


def register(app: typer.Typer) -> None:
    """Add deploy and deploy-all."""
    app.command()(deploy)
    app.command("deploy-all")(deploy_all)
