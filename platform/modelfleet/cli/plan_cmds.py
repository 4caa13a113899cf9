"""``fleet plan``: the reviewer's view of a change, like ``terraform plan``.

The plan always says which environment it shows and which deployed state it diffs against
-- read live from the target, an exported file with its age, or explicitly none -- so a
pull request never shows "create" for everything because of a state file nobody updates.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import typer
from rich.table import Table

from modelfleet.cli.common import UserError, console, load_settings_and_catalog, print_problems, user_errors
from modelfleet.plan import Plan, PlanEntry, StateSource, make_plan
from modelfleet.settings import FleetSettings
from modelfleet.state import FleetState, load_state_file
from modelfleet.targets import get_target
from modelfleet.targets.base import TargetCredentialsError

_SYMBOL = {
    "create": "[green]+ create[/green]",
    "update": "[yellow]~ update[/yellow]",
    "unchanged": "  unchanged",
    "orphan": "[red]- orphan[/red]",
}
_MARKDOWN_SYMBOL = {"create": "+ create", "update": "~ update", "unchanged": "unchanged", "orphan": "- orphan"}


def plan(
    state_file: Path | None = typer.Option(None, "--state", help="Diff against a saved state export (offline)."),
    fallback_state: Path | None = typer.Option(
        None,
        "--fallback-state",
        help="Read the live state when credentials are here, else this export (the last merge run's artifact); "
        "when neither exists the plan says it has no state.",
    ),
    no_state: bool = typer.Option(False, "--no-state", help="Diff against nothing: every model shows as create."),
    output: Literal["table", "markdown", "json"] = typer.Option("table", "--format", "-f", help="Output format."),
    models: list[str] | None = typer.Argument(None, help="Only these models (default: all)."),
) -> None:
    """Show per model what a deploy would create, update (field by field), leave, or orphan, and the cost change."""
    with user_errors():
        if sum(bool(x) for x in (state_file, fallback_state, no_state)) > 1:
            raise UserError("pick one of --state, --fallback-state and --no-state")
        settings, catalog = load_settings_and_catalog()
        print_problems(catalog)
        state, source = read_state(settings, state_file=state_file, fallback=fallback_state, none=no_state)
        result = make_plan(catalog, state, settings, only=models or None, source=source)
        if output == "json":
            typer.echo(json.dumps(_as_json(result), indent=2, default=str))
        elif output == "markdown":
            typer.echo(render_markdown(result))
        else:
            print_plan(result)
        if catalog.errors:
            raise typer.Exit(1)


def read_state(
    settings: FleetSettings, *, state_file: Path | None, fallback: Path | None, none: bool
) -> tuple[FleetState, StateSource]:
    """The deployed state to diff against, and which one it is.

    ``fallback`` is for CI's pull-request job: the live state when a (read-only) Modal token
    is configured, else the export the last merge run left; an absent export is said in the
    plan ("no deployed state"), never read as an empty fleet without a word.
    """
    if none:
        return FleetState(), StateSource("none", "--no-state")
    if state_file is not None:
        return _from_file(state_file)
    try:
        state = get_target(settings).deployed_state()
    except TargetCredentialsError:
        if fallback is None:
            raise
        if not fallback.is_file():
            return FleetState(), StateSource("none", f"no live credentials and no export at {fallback}")
        return _from_file(fallback)
    return state, StateSource("live", settings.environment_label)


def _from_file(path: Path) -> tuple[FleetState, StateSource]:
    state = load_state_file(path)
    where = f"{path}" + (f" of {state.environment}" if state.environment else "")
    return state, StateSource("file", where, state.exported_at)


def print_plan(result: Plan) -> None:
    """The plan as a table with a one-line summary (also shown before a deploy)."""
    table = Table(title=f"plan: {result.environment}" if result.environment else "plan")
    for column in ("model", "action", "changes", "floor $/h", "ceiling $/h"):
        table.add_column(column)
    for entry in result.entries:
        table.add_row(
            entry.model, _SYMBOL[entry.action], _changes_text(entry), _money(entry, "floor"), _money(entry, "ceiling")
        )
    if result.source is not None:
        console.print(f"against the {result.source.describe()}", highlight=False)
    console.print(table)
    counts = result.counts
    console.print(
        f"Plan: {counts['create']} to create, {counts['update']} to update, {counts['orphan']} orphaned, "
        f"{counts['unchanged']} unchanged. Idle floor ${result.floor_before:.2f}/h -> "
        f"${result.floor_after:.2f}/h, ceiling ${result.ceiling_before:.2f}/h -> ${result.ceiling_after:.2f}/h."
    )


def render_markdown(result: Plan) -> str:
    """The plan as a Markdown table, for a pull request's job summary."""
    lines = [f"### fleet plan: {result.environment}" if result.environment else "### fleet plan", ""]
    if result.source is not None:
        lines += [f"Against the {result.source.describe()}.", ""]
    lines += [
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
    source = result.source
    return {
        "environment": result.environment,
        "state": None if source is None else {**asdict(source), "age": source.age(), "describe": source.describe()},
        "has_changes": result.has_changes,
        "entries": [asdict(e) for e in result.entries],
    }


def register(app: typer.Typer) -> None:
    """Add ``fleet plan``."""
    app.command()(plan)
