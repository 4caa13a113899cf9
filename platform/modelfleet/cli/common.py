"""What every command shares: settings, the catalog, consoles and user-error handling.

A user error (bad model.toml, unknown model, missing token) prints one red line and
exits non-zero without a traceback; ``--debug`` (or ``FLEET_DEBUG=1``) shows it. Any
other exception is a bug and shows its traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from modelfleet.catalog import Catalog, load_catalog
from modelfleet.errors import FleetError
from modelfleet.settings import FleetSettings
from modelfleet.terminal import is_interactive

# Messages never wrap (a user error is one line a person or a CI log can grep), and
# tables get room when stdout is a pipe or a CI log rather than a terminal.
_PIPE_WIDTH = None if is_interactive() or os.environ.get("COLUMNS") else 160
console = Console(soft_wrap=True, width=_PIPE_WIDTH)
err_console = Console(stderr=True, soft_wrap=True)


class UserError(FleetError):
    """A problem found by a command itself; printed without a traceback."""


def debug_enabled() -> bool:
    """Whether tracebacks should be shown (``--debug`` sets FLEET_DEBUG)."""
    return os.environ.get("FLEET_DEBUG", "") not in ("", "0", "false")


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the project's own errors into one line on stderr and exit code 1.

    Only ``FleetError`` (every user-fixable problem the platform raises, an unknown model
    included) and pydantic's ``ValidationError`` (a spec or settings value that does not
    validate) count as user errors; anything else is a programming error and keeps its
    traceback, so a bug is never reported as if the user had typed something wrong.
    """
    try:
        yield
    except (FleetError, ValidationError) as error:
        if debug_enabled():
            raise
        message = _validation_line(error) if isinstance(error, ValidationError) else str(error)
        # escape: a message naming a TOML table ("[prices.per_hour]") is text, not markup.
        err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
        raise typer.Exit(1) from None


def _validation_line(error: ValidationError) -> str:
    """``Title: where: message`` for each failed field, on one line."""
    parts = [f"{'.'.join(str(p) for p in item['loc']) or '(value)'}: {item['msg']}" for item in error.errors()]
    return f"{error.title}: " + "; ".join(parts)


def load_settings() -> FleetSettings:
    """Fleet settings, with pydantic errors turned into a user error naming fleet.toml."""
    try:
        return FleetSettings()
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"fleet.toml / FLEET_* settings: {where}: {first['msg']}") from None


def load_settings_and_catalog() -> tuple[FleetSettings, Catalog]:
    """Settings and the catalog of every model folder."""
    settings = load_settings()
    return settings, load_catalog(settings)


def print_problems(catalog: Catalog) -> None:
    """Warnings in yellow and errors in red, one ``file: field: message`` line each."""
    for problem in catalog.problems:
        colour = "red" if problem.level == "error" else "yellow"
        err_console.print(
            f"[{colour}]{problem.level}:[/{colour}] {escape(problem.render(catalog.root))}", highlight=False
        )
