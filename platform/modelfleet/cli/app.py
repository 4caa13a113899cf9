"""The ``fleet`` typer app: each command module registers its commands here.

Command modules live next to this file; each exposes ``register(app)``. Adding a
command means adding its module to ``COMMAND_MODULES`` and its name to
``COMMAND_OWNERS`` (a test checks the two agree).

The console entry point loads only the module that owns the command being run:
importing every module costs about two CPU-seconds (the openai SDK, the modal client,
the gateway), which ``fleet validate`` and ``fleet plan`` -- run on every pull request
and in editors' save hooks -- do not need. ``--help`` and anything unknown load all
of them, so the help and typer's "no such command" message stay complete. This is
click's "lazily loading subcommands" pattern (click docs, "Advanced Groups"), done by
choosing the modules before the app is built rather than by a custom group class.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

import typer

from modelfleet.cli.common import with_env_option

COMMAND_MODULES: tuple[str, ...] = (
    "modelfleet.cli.catalog_cmds",
    "modelfleet.cli.plan_cmds",
    "modelfleet.cli.ci_cmds",
    "modelfleet.cli.deploy_cmds",
    "modelfleet.cli.serve_cmds",
    "modelfleet.cli.volume_cmds",
    "modelfleet.cli.postdeploy_cmds",
    "modelfleet.cli.report_cmds",
    "modelfleet.cli.state_cmds",
    "modelfleet.cli.rehearse_cmds",
    "modelfleet.cli.gateway_cmds",
    "modelfleet.cli.promote_cmds",
    "modelfleet.cli.top_cmds",
)

# Top-level command (or command group) -> the module that registers it. Only the
# commands people run in tight loops need to be here; a command missing from the
# map still works (every module is loaded), it is only slower to start.
COMMAND_OWNERS: dict[str, str] = {
    "validate": "modelfleet.cli.catalog_cmds",
    "list": "modelfleet.cli.catalog_cmds",
    "schema": "modelfleet.cli.catalog_cmds",
    "show": "modelfleet.cli.catalog_cmds",
    "new": "modelfleet.cli.catalog_cmds",
    "cost": "modelfleet.cli.catalog_cmds",
    "plan": "modelfleet.cli.plan_cmds",
}


def build_app(modules: Sequence[str] = COMMAND_MODULES) -> typer.Typer:
    """The ``fleet`` app with the commands of ``modules`` (all of them unless told otherwise)."""
    app = typer.Typer(
        name="fleet",
        help="A fleet of open-weights LLMs as code: validate, plan, seed, deploy and serve model folders.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @app.callback()
    def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
        """Global options."""
        if debug:
            os.environ["FLEET_DEBUG"] = "1"

    for module in modules:
        importlib.import_module(module).register(app)
    # Every command, whichever module added it, takes --env (fleet.toml's [environments]).
    with_env_option(app)
    return app


def modules_for(argv: Sequence[str]) -> tuple[str, ...]:
    """The command modules a command line needs: its command's owner, or all of them.

    The root takes one option (``--debug``, no value), so the first word not starting
    with ``-`` is the command.
    """
    command = next((word for word in argv if not word.startswith("-")), None)
    if command is None or "--help" in argv or "-h" in argv:
        return COMMAND_MODULES
    owner = COMMAND_OWNERS.get(command)
    return (owner,) if owner else COMMAND_MODULES


def __getattr__(name: str) -> typer.Typer:
    """``app``: the whole app, built on first use (tests and ``typer.testing`` import it)."""
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console entry point (``fleet``): only the running command's module is loaded."""
    build_app(modules_for(sys.argv[1:]))()
