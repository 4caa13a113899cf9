"""``fleet rollback`` and ``fleet state export``: the Modal-side bookkeeping commands.

Rollback goes through the target (Modal's app rollback; the fleet state follows the
restored version). ``state export`` writes what is deployed to a JSON file that
``fleet plan --state FILE`` reads offline, e.g. in a pull-request check.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from modelfleet.cli.common import UserError, console, load_settings_and_catalog, user_errors
from modelfleet.postdeploy.report import record_rollback
from modelfleet.state import save_state_file
from modelfleet.targets import get_target
from modelfleet.targets.base import DeployOutcome

state_app = typer.Typer(help="Fleet state: what each model's deploy recorded.", no_args_is_help=True)


def rollback(
    name: str = typer.Argument(help="Model folder name."),
    to: str | None = typer.Option(
        None, "--to", help="Version to restore, e.g. v3 (default: the one before the live version)."
    ),
) -> None:
    """Serve an earlier version of a model's app again (Modal's app rollback, strategy recreate).

    The rollback is a new version on Modal; the fleet state then names that version with the
    spec of the version it restored.
    """
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        model = catalog.require(name)
        target = get_target(settings)
        method: Callable[..., DeployOutcome] | None = getattr(target, "rollback", None)
        if method is None:
            raise UserError(
                f"the {target.name} target keeps no app versions to roll back to; "
                "rollback needs FLEET_TARGET=modal (or target = 'modal' in fleet.toml)"
            )
        outcome = method(model, to)
        # CI's rollback step runs this command: the model's deploy report says what it did.
        record_rollback(settings, outcome, target=target.name)
        if outcome.result != "ok":
            raise UserError(f"rollback of {name} failed: {outcome.detail}")
        console.print(f"{outcome.app}: {outcome.detail}, now live as {outcome.version}", highlight=False)


@state_app.command("export")
def export(file: Path = typer.Argument(help="JSON file to write (read by `fleet plan --state FILE`).")) -> None:
    """Write the deployed state of the current target to FILE."""
    with user_errors():
        settings, _ = load_settings_and_catalog()
        state = get_target(settings).deployed_state()
        save_state_file(state, file)
        console.print(f"wrote {len(state.models)} model record(s) to {file}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add rollback and the state group."""
    app.command()(rollback)
    app.add_typer(state_app, name="state")
