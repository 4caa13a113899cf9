"""``fleet plan``: the reviewer's view of a change, like ``terraform plan``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import typer
from rich.table import Table

from modelfleet.cli.common import console, load_settings_and_catalog, print_problems, user_errors
from modelfleet.plan import Plan, PlanEntry, make_plan
from modelfleet.state import FleetState, load_state_file
from modelfleet.targets import get_target

_SYMBOL = {
    "create": "[green]+ create[/green]",
    "update": "[yellow]~ update[/yellow]",
    "unchanged": "  unchanged",
    "orphan": "[red]- orphan[/red]",
}
_MARKDOWN_SYMBOL = {"create": "+ create", "update": "~ update", "unchanged": "unchanged", "orphan": "- orphan"}


def plan(
    state_file: Path | None = typer.Option(None, "--state", help="Diff against a saved state export (offline)."),
    output: Literal["table", "markdown", "json"] = typer.Option("table", "--format", "-f", help="Output format."),
    models: list[str] | None = typer.Argument(None, help="Only these models (default: all)."),
) -> None:
    """Show per model what a deploy would create, update (field by field), leave, or orphan, and the cost change."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        print_problems(catalog)
        state: FleetState = load_state_file(state_file) if state_file else get_target(settings).deployed_state()
        result = make_plan(catalog, state, settings, only=models or None)
        if output == "json":
            typer.echo(json.dumps(_as_json(result), indent=2, default=str))
        elif output == "markdown":
            typer.echo(render_markdown(result))
        else:
            print_plan(result)
        if catalog.errors:
            raise typer.Exit(1)


def print_plan(result: Plan) -> None:
    """The plan as a table with a one-line summary (also shown before a deploy)."""
    table = Table(title="plan")
    for column in ("model", "action", "changes", "floor $/h", "ceiling $/h"):
        table.add_column(column)
    for entry in result.entries:
        table.add_row(
            entry.model, _SYMBOL[entry.action], _changes_text(entry), _money(entry, "floor"), _money(entry, "ceiling")
        )
    console.print(table)
    counts = result.counts
    console.print(
        f"Plan: {counts['create']} to create, {counts['update']} to update, {counts['orphan']} orphaned, "
        f"{counts['unchanged']} unchanged. Idle floor ${result.floor_before:.2f}/h -> "
        f"${result.floor_after:.2f}/h, ceiling ${result.ceiling_before:.2f}/h -> ${result.ceiling_after:.2f}/h."
    )


def render_markdown(result: Plan) -> str:
    """The plan as a Markdown table, for a pull request's job summary."""
    lines = [
        "### fleet plan",
        "",
        "| model | action | changes | floor $/h | ceiling $/h |",
        "| --- | --- | --- | --- | --- |",
    ]
    for entry in result.entries:
        changes = _changes_text(entry).replace("\n", "<br>")
        lines.append(
            f"| {entry.model} | {_MARKDOWN_SYMBOL[entry.action]} | {changes} | {_money(entry, 'floor')} | {_money(entry, 'ceiling')} |"
        )
    lines.append("")
    lines.append(
        f"Idle floor ${result.floor_before:.2f}/h -> ${result.floor_after:.2f}/h; "
        f"ceiling ${result.ceiling_before:.2f}/h -> ${result.ceiling_after:.2f}/h."
    )
    return "\n".join(lines)


def _changes_text(entry: PlanEntry) -> str:
    if entry.action == "create":
        return "new app " + entry.app
    if entry.action == "orphan":
        return f"app {entry.app} has no folder any more (fleet down / modal app stop)"
    return "\n".join(f"{c.path}: {_short(c.old)} -> {_short(c.new)}" for c in entry.changes)


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 48 else text[:45] + "..."


def _money(entry: PlanEntry, kind: str) -> str:
    before, after = getattr(entry, f"{kind}_before"), getattr(entry, f"{kind}_after")
    return f"{after:.2f}" if before == after else f"{before:.2f} -> {after:.2f}"


def _as_json(result: Plan) -> dict[str, Any]:
    return {"has_changes": result.has_changes, "entries": [asdict(e) for e in result.entries]}


def register(app: typer.Typer) -> None:
    """Add ``fleet plan``."""
    app.command()(plan)
