"""What every command shares: settings, the catalog, consoles and user-error handling.

A user error (bad model.toml, unknown model, missing token) prints one red line and
exits non-zero without a traceback; ``--debug`` (or ``FLEET_DEBUG=1``) shows it. Any
other exception is a bug and shows its traceback.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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


# The option every command takes (added by `with_env_option`); FLEET_ENV is the same in CI.
ENV_OPTION_NAME = "fleet_env"
ENV_VARIABLE = "FLEET_ENV"


def env_option() -> Any:
    """``--env NAME``: the environment of fleet.toml's ``[environments]`` a command works in."""
    return typer.Option(
        None,
        "--env",
        help="Environment of fleet.toml's environments table (staging, prod, ...); default: FLEET_ENV, then "
        "fleet.toml's env.",
        metavar="NAME",
        show_default=False,
    )


def with_env_option(app: typer.Typer) -> None:
    """Give every command of ``app`` (sub-apps included) the shared ``--env`` option.

    One place rather than a parameter in each command module: a command added later gets it
    too. The option sets ``FLEET_ENV`` for the command's own process before it runs, so the
    settings every command loads (``load_settings``) pick the environment up like CI's
    ``FLEET_ENV``; typer reads the wrapper's ``__signature__`` to build the option.
    """
    for command in app.registered_commands:
        if command.callback is not None and ENV_OPTION_NAME not in inspect.signature(command.callback).parameters:
            command.callback = _taking_env(command.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            with_env_option(group.typer_instance)


def _taking_env(callback: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(callback)
    option = inspect.Parameter(
        ENV_OPTION_NAME, inspect.Parameter.KEYWORD_ONLY, default=env_option(), annotation=str | None
    )
    parameters = [p for p in signature.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]

    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        chosen = kwargs.pop(ENV_OPTION_NAME, None)
        if chosen:
            os.environ[ENV_VARIABLE] = chosen
        return callback(*args, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*parameters, option])  # type: ignore[attr-defined]
    return wrapper


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
    """Fleet settings, with pydantic errors turned into a user error naming fleet.toml.

    When an environment was chosen for this command (``--env`` or ``FLEET_ENV``), one line
    on stderr says which (stdout stays the command's own output: JSON, Markdown, tables),
    so no table is read as another environment's. fleet.toml's default environment is not
    announced on every command; the plan's title names it.
    """
    try:
        settings = FleetSettings()
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"fleet.toml / FLEET_* settings: {where}: {first['msg']}") from None
    if settings.env is not None and os.environ.get(ENV_VARIABLE):
        err_console.print(f"environment: {escape(settings.environment_label)}", highlight=False)
    return settings


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
