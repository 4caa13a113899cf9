"""``fleet state export``: the deployed state as a file.

``state export`` writes what the current target has deployed to a JSON file that
``fleet plan --state FILE`` reads offline, e.g. in a pull-request check.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from modelfleet.cli.common import console, load_settings_and_catalog, user_errors
from modelfleet.state import save_state_file
from modelfleet.targets import get_target

state_app = typer.Typer(help="Fleet state: what each model's deploy recorded.", no_args_is_help=True)


@state_app.command("export")
def export(file: Path = typer.Argument(help="JSON file to write (read by `fleet plan --state FILE`).")) -> None:
    """Write the deployed state of the current target to FILE."""
    with user_errors():
        settings, _ = load_settings_and_catalog()
        # Which environment and when: `fleet plan --state FILE` shows both, and the file's age.
        state = (
            get_target(settings)
            .deployed_state()
            .model_copy(update={"environment": settings.env or settings.modal_environment, "exported_at": _now()})
        )
        save_state_file(state, file)
        console.print(f"wrote {len(state.models)} model record(s) to {file}", highlight=False)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def register(app: typer.Typer) -> None:
    """Add the state group."""
    app.add_typer(state_app, name="state")
