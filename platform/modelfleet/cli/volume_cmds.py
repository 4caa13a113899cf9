"""``fleet seed``, ``fleet verify``, ``fleet volumes`` and ``fleet volumes prune``.

Seeding goes through the target (on Modal a function with the volume mounted does
it, so weights never pass through the machine running the CLI). Verify, list and
prune use the weights volume the target hands out (``Target.weights_volume``): the
local target's folder; on Modal an error naming ``modal volume ls`` (the seed function
verifies the volume on every run there).
"""

from __future__ import annotations

import time

import typer
from rich.table import Table

from modelfleet.catalog import Catalog, CatalogModel
from modelfleet.cli.common import UserError, console, load_settings_and_catalog, user_errors
from modelfleet.settings import FleetSettings
from modelfleet.targets.base import OnEvent, Target
from modelfleet.terminal import is_interactive
from modelfleet.volumes.inventory import NotSeededError, SeededRevision, VolumeNotHereError
from modelfleet.volumes.layout import local_volume_folder

volumes_app = typer.Typer(
    name="volumes",
    help="Declared volumes and what is seeded on them; `prune` removes revisions no model uses.",
    invoke_without_command=True,
)


def seed_command(
    names: list[str] = typer.Argument(None, help="Model folder names."),
    all_models: bool = typer.Option(False, "--all", help="Seed every valid model."),
) -> None:
    """Put models' weights on their volume, verified; a seeded model downloads nothing."""
    from modelfleet.cli.deploy_cmds import print_outcomes

    with user_errors():
        settings, catalog = load_settings_and_catalog()
        models = _select(catalog, names or [], all_models=all_models)
        target = _target(settings)
        outcomes = target.seed(models, on_event=_event_lines())
        print_outcomes(outcomes, title=f"seed ({target.name})")
        if any(o.result == "failed" for o in outcomes):
            raise typer.Exit(1)


def verify_command(
    names: list[str] = typer.Argument(None, help="Model folder names."),
    all_models: bool = typer.Option(False, "--all", help="Verify every valid model."),
) -> None:
    """Re-hash a model's seeded files against its manifest; exit 1 if any is missing or damaged."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        models = _select(catalog, names or [], all_models=all_models)
        volume = _target(settings).weights_volume()
        failed = False
        for model in models:
            started = time.monotonic()
            try:
                result = volume.verify(model)
            except NotSeededError as error:
                failed = True
                console.print(f"[red]failed[/red] {error}", highlight=False)
                continue
            took = time.monotonic() - started
            console.print(
                f"[green]ok[/green] {model.name}: {result.files} files, {_size(result.bytes)} verified in {took:.1f}s"
            )
        if failed:
            raise typer.Exit(1)


@volumes_app.callback()
def volumes_command(ctx: typer.Context) -> None:
    """List the declared volumes and every revision seeded on the weights volume."""
    if ctx.invoked_subcommand is not None:
        return
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        _print_declared(settings, catalog)
        try:
            volume = _target(settings).weights_volume()
        except VolumeNotHereError as error:
            # Declared volumes are listed on every target; their contents only where readable.
            console.print(str(error), highlight=False)
            return
        models = list(catalog.models.values())
        _print_revisions(volume.revisions(models))
        missing = volume.unseeded(models)
        if missing:
            console.print(f"not seeded yet: {', '.join(missing)} (`fleet seed NAME` or `fleet seed --all`)")


@volumes_app.command("prune")
def prune_command(yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (CI).")) -> None:
    """Remove revisions no model declares any more (asks first unless --yes)."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        if catalog.errors:
            # A model whose model.toml is broken is missing from the catalog: its weights would look stale.
            raise UserError(
                f"{len(catalog.errors)} model folder(s) do not validate (see `fleet validate`); "
                "fix them first so their weights are not taken for stale ones"
            )
        volume = _target(settings).weights_volume()
        stale = [r for r in volume.revisions(catalog.models.values()) if r.stale]
        if not stale:
            console.print("nothing to prune: every revision on the volume is used by a model")
            return
        _print_revisions(stale, title="stale revisions (no model declares them)")
        if not yes:
            if not is_interactive():
                raise UserError("refusing to prune without confirmation when not at a terminal: pass --yes")
            typer.confirm(f"remove {len(stale)} revision(s), {_size(sum(r.bytes for r in stale))}?", abort=True)
        console.print(f"pruned {len(stale)} revision(s), {_size(volume.prune(stale))} freed")


def _select(catalog: Catalog, names: list[str], *, all_models: bool) -> list[CatalogModel]:
    if all_models == bool(names):
        raise UserError("name the models to act on, or pass --all (not both)")
    if all_models:
        return sorted(catalog.models.values(), key=lambda m: m.name)
    return [catalog.require(name) for name in names]


def _target(settings: FleetSettings) -> Target:
    from modelfleet.targets import get_target

    try:
        return get_target(settings)
    except ImportError:
        # The Modal target ships its seed function with `fleet deploy`; until it is part of
        # this install there is nothing to run the seed inside Modal.
        raise UserError(
            f"target {settings.target!r} is not available in this install; on Modal the seeding function is "
            "deployed by `fleet deploy`, or seed locally with FLEET_TARGET=local"
        ) from None


def _event_lines() -> OnEvent:
    """One plain line per stage: the target's own seeding draws byte bars at a terminal."""
    started = time.monotonic()

    def on_event(model: str, stage: str, detail: str) -> None:
        console.print(f"[{time.monotonic() - started:6.1f}s] {model}: {stage} {detail}".rstrip(), highlight=False)

    return on_event


def _print_declared(settings: FleetSettings, catalog: Catalog) -> None:
    table = Table(title=f"declared volumes (target {settings.target})")
    for column in ("file", "name", "purpose", "mount path", "serving mounts", "local folder"):
        table.add_column(column)
    for stem, volume in sorted(catalog.volumes.items()):
        folder = local_volume_folder(settings, volume)
        table.add_row(
            f"volumes/{stem}.toml",
            volume.name,
            volume.purpose,
            volume.mount_path,
            "read-only" if volume.read_only_when_serving else "read-write",
            str(folder.relative_to(settings.root)) if folder.is_relative_to(settings.root) else str(folder),
        )
    console.print(table)


def _print_revisions(revisions: list[SeededRevision], *, title: str = "seeded on the weights volume") -> None:
    if not revisions:
        console.print("nothing on the weights volume yet")
        return
    table = Table(title=title)
    for column in ("repo", "revision", "models", "size", "state"):
        table.add_column(column)
    styles = {"seeded": "green", "incomplete": "yellow", "damaged": "red"}
    for r in revisions:
        state = f"[{styles[r.state]}]{r.state}[/{styles[r.state]}]" + (" [yellow](stale)[/yellow]" if r.stale else "")
        table.add_row(r.where.repo_id, r.where.revision[:16], ", ".join(r.models) or "-", _size(r.bytes), state)
    console.print(table)
    console.print("seeded = manifest present and sizes match; `fleet verify NAME` re-hashes every file")


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:.2f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.1f} MB"


def register(app: typer.Typer) -> None:
    """Add seed, verify and the volumes group."""
    app.command("seed")(seed_command)
    app.command("verify")(verify_command)
    app.add_typer(volumes_app, name="volumes")
