"""The ``fleet`` typer app: each command module registers its commands here.

Command modules live next to this file; each exposes ``register(app)``. Adding a
command means adding its module to ``COMMAND_MODULES``.
"""

from __future__ import annotations

import importlib
import os

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
    "modelfleet.cli.state_cmds",
    "modelfleet.cli.rehearse_cmds",
    "modelfleet.cli.gateway_cmds",
    "modelfleet.cli.promote_cmds",
    "modelfleet.cli.top_cmds",
)

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


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)
# Every command, whichever module added it, takes --env (fleet.toml's [environments]).
with_env_option(app)


def main() -> None:
    """Console entry point (``fleet``)."""
    app()
