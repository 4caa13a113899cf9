"""``fleet promote MODEL --from staging --to prod``: deploy to prod exactly what passed in staging.

Refused, with the reason, unless staging's live version of the model recorded a pass and
this checkout is the commit it was deployed from (``promotion.check_promotion``). Then: a
table of what goes (commit, spec hash, image digest, the version it replaces), the deploy
to the target environment, a check that what went live there is the same commit, spec and
image, the post-deploy steps there (``fleet snapshot``, ``fleet smoke`` -- through which
the quality gate runs), and a promotion record in the target environment's state.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from typer.models import ParameterInfo

from modelfleet.cli import postdeploy_cmds
from modelfleet.cli.common import ENV_VARIABLE, UserError, console, err_console, load_settings_and_catalog, user_errors
from modelfleet.cli.deploy_cmds import print_outcomes
from modelfleet.gitinfo import deploy_tag
from modelfleet.passes import PromotionRecord, record_promotion
from modelfleet.postdeploy.snapshot import DEFAULT_MAX_TRIES
from modelfleet.promotion import Promotion, check_promotion
from modelfleet.settings import FleetSettings
from modelfleet.targets import get_target
from modelfleet.targets.base import Target
from modelfleet.targets.passes import pass_book


def promote(
    name: str = typer.Argument(help="Model folder name."),
    source: str = typer.Option(..., "--from", help="Environment the model passed in (e.g. staging)."),
    to: str = typer.Option(..., "--to", help="Environment to deploy it to (e.g. prod)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (CI)."),
    timeout: float | None = typer.Option(
        None,
        "--timeout",
        help="Seconds each post-deploy check may wait (default: as `fleet smoke` and `fleet snapshot`).",
    ),
    github_output: Path | None = typer.Option(
        None, "--github-output", help="Append deployed=true|false and version=... (CI's $GITHUB_OUTPUT)."
    ),
    gateway: bool = typer.Option(
        True,
        "--gateway/--no-gateway",
        help="Redeploy --to's gateway once the promoted model passed its checks there, so a model new to --to "
        "gets its route (Modal). CI passes --no-gateway: one gateway job follows all its promotions.",
    ),
) -> None:
    """Deploy to --to exactly what passed in --from (same commit, spec and image), then check it there."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        model = catalog.require(name)
        from_settings, to_settings = settings.for_environment(source), settings.for_environment(to)
        from_target, to_target = get_target(from_settings), get_target(to_settings)
        checkout = deploy_tag(settings.root, allow_dirty=not to_target.requires_clean_tree)
        promotion = check_promotion(
            model,
            source=from_settings,
            target=to_settings,
            source_state=from_target.deployed_state(),
            source_passes=pass_book(from_settings),
            target_state=to_target.deployed_state(),
            checkout=checkout,
        )
        print_promotion(promotion, to_settings)
        if promotion.already_live:
            console.print(f"{name}: {to} already serves what passed in {source}; nothing to deploy", highlight=False)
            return
        if not yes:
            if not os.isatty(0):
                raise UserError("refusing to promote without confirmation when not at a terminal: pass --yes")
            typer.confirm(f"promote {name} {promotion.source.version} from {source} to {to}?", abort=True)
        [outcome] = to_target.deploy([model], tag=promotion.source.tag)
        if outcome.result != "ok":
            raise UserError(f"promotion of {name} to {to}: deploy {outcome.result}: {outcome.detail}")
        _write_output(github_output, deployed=True, version=outcome.version)
        live = to_target.deployed_state().models.get(name)
        _require_same(promotion, live, to)
        checks_ok = _post_deploy(name, to, timeout)
        assert live is not None  # _require_same checked it
        record_promotion(
            pass_book(to_settings),
            PromotionRecord(
                model=name,
                environment=to,
                version=live.version or live.tag,
                from_environment=source,
                from_version=promotion.source.version or promotion.source.tag,
                spec_hash=live.spec_hash,
                tag=live.tag,
                image=live.image,
                result="passed" if checks_ok else "failed",
            ),
        )
        if not checks_ok:
            err_console.print(
                f"[red]promotion of {name} to {to} failed its checks[/red]: {to} serves {live.version} now; roll it "
                f"back with `fleet rollback {name} --env {to}` ({source} is untouched)",
                highlight=False,
            )
            raise typer.Exit(1)
        console.print(
            f"promoted {name} {promotion.source.version} ({source}) -> {live.version} ({to})", highlight=False
        )
        if gateway:
            _redeploy_gateway(to_target, name, to, tag=promotion.source.tag)


def _redeploy_gateway(target: Target, name: str, to: str, *, tag: str) -> None:
    """The target environment's gateway, redeployed in front of what it now serves (None: the target has none to deploy)."""
    redeployed = target.deploy_gateway(tag=tag)
    if redeployed is None:
        return
    print_outcomes([redeployed], title=f"gateway ({to})")
    if redeployed.result == "failed":
        raise UserError(
            f"{name} is promoted and serving in {to}, but {to}'s gateway did not redeploy: {redeployed.detail}; "
            f"retry with `fleet gateway deploy --env {to}`"
        )


def print_promotion(promotion: Promotion, to_settings: FleetSettings) -> None:
    """What goes where: the source's passed deploy beside what the target serves now."""
    table = Table(title=f"promote {promotion.model}: {promotion.source_env} -> {to_settings.environment_label}")
    for column in ("", promotion.source_env + " (passed)", promotion.target_env + " (live now)"):
        table.add_column(column)
    live = promotion.live
    rows: list[tuple[str, Callable[[Any], str]]] = [
        ("version", lambda r: r.version or "-"),
        ("commit", lambda r: r.tag[:12] or "-"),
        ("spec hash", lambda r: r.spec_hash[:12] or "-"),
        ("image", lambda r: r.image[:19] or "-"),
        ("deployed at", lambda r: r.deployed_at),
    ]
    for label, value in rows:
        table.add_row(label, value(promotion.source), value(live) if live else "not deployed")
    table.add_row("checks", f"{', '.join(promotion.passed.checks)} passed {promotion.passed.passed_at}", "")
    console.print(table)


def _require_same(promotion: Promotion, live: Any, to: str) -> None:
    """What went live in ``to`` is the commit, spec and image that passed, or the command says what differs."""
    if live is None:
        raise UserError(f"{promotion.model}: deployed to {to}, but its state records no deploy")
    expected = (promotion.source.tag, promotion.source.spec_hash, promotion.source.image)
    got = (live.tag, live.spec_hash, live.image)
    if got != expected:
        names = ("commit", "spec hash", "image")
        what = ", ".join(f"{n} {e[:12]} -> {g[:12]}" for n, e, g in zip(names, expected, got, strict=True) if e != g)
        raise UserError(
            f"{promotion.model}: {to} now serves a deploy that differs from what passed ({what}); "
            f"roll it back with `fleet rollback {promotion.model} --env {to}`"
        )


def _post_deploy(name: str, environment: str, timeout: float | None) -> bool:
    """``fleet snapshot`` then ``fleet smoke`` in ``environment`` -- the very commands CI runs -- True when both pass."""
    saved = os.environ.get(ENV_VARIABLE)
    os.environ[ENV_VARIABLE] = environment
    try:
        steps: list[Callable[[], None]] = [
            lambda: run_command(postdeploy_cmds.snapshot, name=name, tries=DEFAULT_MAX_TRIES, timeout=timeout),
            lambda: run_command(postdeploy_cmds.smoke, name=name, rollback_on_failure=False, timeout=timeout),
        ]
        for step in steps:
            try:
                step()
            except typer.Exit as stop:
                if stop.exit_code:
                    return False
        return True
    finally:
        if saved is None:
            os.environ.pop(ENV_VARIABLE, None)
        else:
            os.environ[ENV_VARIABLE] = saved


def run_command(command: Callable[..., None], **given: Any) -> None:
    """Call a typer command function as its CLI would: every option not ``given`` takes its declared default.

    A command's parameters default to typer's ``OptionInfo`` objects, which are only
    resolved by the CLI; an option added to the command later must not arrive here as one.
    """
    kwargs = {
        name: given[name] if name in given else _declared_default(parameter.default)
        for name, parameter in inspect.signature(command).parameters.items()
    }
    command(**kwargs)


def _declared_default(value: Any) -> Any:
    return value.default if isinstance(value, ParameterInfo) else value


def _write_output(path: Path | None, *, deployed: bool, version: str = "") -> None:
    """CI's step outputs: whether this run changed the target (the rollback step runs only then).

    Written once a deploy went out; a refused promotion writes nothing, so the output is
    empty and CI's rollback (``deployed == 'true'``) never touches the version still serving.
    """
    if path is not None:
        with path.open("a") as out:
            out.write(f"deployed={'true' if deployed else 'false'}\nversion={version}\n")


def register(app: typer.Typer) -> None:
    """Add ``fleet promote``."""
    app.command()(promote)
