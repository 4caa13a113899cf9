"""``fleet ci``: render the GitHub workflows from ci/templates/, check them for drift, pick the deploy matrix.

The workflows call these commands instead of holding logic in YAML, so what CI will
do can be run and tested here first.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from modelfleet.catalog import Catalog
from modelfleet.ci.matrix import Selection, select_all, select_changed, select_named
from modelfleet.ci.render import find_drift, render_workflows, write_workflows
from modelfleet.cli.common import (
    UserError,
    console,
    err_console,
    load_settings_and_catalog,
    print_problems,
    user_errors,
)

ci_app = typer.Typer(
    name="ci",
    help="CI job definitions: render .github/workflows/ from ci/templates/, check for drift, deploy matrix.",
    no_args_is_help=True,
)


@ci_app.command("render")
def render() -> None:
    """Write .github/workflows/ from ci/templates/ and the catalog (run it after adding a model)."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        print_problems(catalog)
        touched = write_workflows(settings.root, render_workflows(settings.root, catalog, settings))
        for path in touched:
            console.print(f"wrote {path}", highlight=False)
        if not touched:
            console.print("workflows already up to date")


@ci_app.command("check")
def check() -> None:
    """Exit 1 when .github/workflows/ differs from a fresh render (a template or the catalog changed)."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        drift = find_drift(settings.root, render_workflows(settings.root, catalog, settings))
        if drift:
            for item in drift:
                err_console.print(f"[red]drift:[/red] {escape(item.describe())}", highlight=False)
            raise UserError("the checked-in workflows are not what ci/templates/ renders; run `fleet ci render`")
        console.print("workflows match ci/templates/")


@ci_app.command("matrix")
def matrix(
    changed_since: str | None = typer.Option(
        None,
        "--changed-since",
        help="Only models changed between this git ref and HEAD (every model when it is all zeros or unknown).",
    ),
    only: str = typer.Option("", "--only", help="Comma-separated model names; empty means every model."),
    github_output: Path | None = typer.Option(
        None, "--github-output", help="Also append matrix=... and any=true|false to this file ($GITHUB_OUTPUT)."
    ),
) -> None:
    """Print the deploy pipeline's job matrix, {"include": [{"model": NAME}, ...]}, as one line of JSON."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        print_problems(catalog)
        names = [name.strip() for name in only.split(",") if name.strip()]
        if changed_since is not None and names:
            raise UserError("give --changed-since or --only, not both")
        selection = _select(settings.root, catalog, changed_since, names)
        # The reason goes to stderr: stdout is the JSON a job captures.
        err_console.print(f"deploying {len(selection.models)} model(s): {selection.reason}", highlight=False)
        if selection.changes and selection.changes.broken:
            # Not fatal here: the valid models still deploy, and the job's `fleet validate`
            # step turns the run red.
            err_console.print(
                f"[red]error:[/red] changed but invalid, not deployed: {', '.join(selection.changes.broken)} "
                "(see `fleet validate`)",
                highlight=False,
            )
        typer.echo(selection.matrix_json())
        if github_output is not None:
            with github_output.open("a") as handle:
                handle.write(selection.github_output())


def _select(root: Path, catalog: Catalog, changed_since: str | None, names: list[str]) -> Selection:
    if changed_since is not None:
        return select_changed(root, catalog, changed_since)
    if names:
        return select_named(catalog, names)
    return select_all(catalog)


def register(app: typer.Typer) -> None:
    """Add the ``fleet ci`` sub-commands."""
    app.add_typer(ci_app, name="ci")
