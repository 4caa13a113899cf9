"""``fleet report``: the deploy report the post-deploy steps wrote, and the pictures of the fleet's load.

Each post-deploy step (``fleet deploy``, ``snapshot``, ``smoke``, ``rollback``) adds its part to a
model's report; this prints the whole of it -- markdown for CI's job summary, or JSON. With
``--since`` it also draws a PNG per model over that window (load, latency percentiles, cost;
``fleet plots`` draws the same, from the same figures) and links them in a Pictures section;
with ``--plots DIR`` it links PNGs drawn before (CI draws, uploads, then reports with the
artifact's URL).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from modelfleet.cli.common import UserError, err_console, load_settings, load_settings_and_catalog, user_errors
from modelfleet.observe.plot_links import pictures_markdown
from modelfleet.postdeploy.parts import DeployReport
from modelfleet.postdeploy.report import render_json, render_markdown, report_book


def report(
    names: list[str] = typer.Argument(None, help="Models to report (default: every model with a report)."),
    markdown: bool = typer.Option(False, "--markdown", help="Markdown (the default), for $GITHUB_STEP_SUMMARY."),
    as_json: bool = typer.Option(False, "--json", help="JSON with every step's part."),
    since: str | None = typer.Option(
        None,
        "--since",
        help="Also draw a PNG per model over this window (30m, 6h, 2d), as `fleet plots` does, into --out, "
        "and link them.",
    ),
    out: Path = typer.Option(Path("fleet-plots"), "--out", help="With --since: the folder for the PNGs."),
    plots: Path | None = typer.Option(
        None, "--plots", help="A `fleet plots` folder: link each model's PNG (relative links) in a Pictures section."
    ),
    plots_url: str | None = typer.Option(
        None, "--plots-url", help="With --plots in CI: the uploaded folder's artifact URL (upload-artifact's output)."
    ),
) -> None:
    """Print the deploy report the post-deploy steps wrote: version, boot, cold starts, smoke, rollback, pictures."""
    with user_errors():
        if markdown and as_json:
            raise UserError("pick one of --markdown and --json")
        if (plots is not None or plots_url is not None or since is not None) and as_json:
            raise UserError("--since, --plots and --plots-url go with the markdown report; drop --json")
        if plots_url is not None and plots is None:
            raise UserError("--plots-url names where the --plots folder was uploaded; give --plots DIR too")
        if since is not None and plots is not None:
            raise UserError("--since draws the pictures into --out and links them; drop --plots (or --since)")
        book = report_book(load_settings())
        reports = [book.read(n) or DeployReport(model=n) for n in names] if names else book.all()
        if as_json:
            sys.stdout.write(render_json(reports) + "\n")
            return
        if since is not None:
            plots = _draw(names, since, out)
        text = render_markdown(reports)
        if plots is not None:
            text += "\n" + pictures_markdown([r.model for r in reports], plots, plots_url)
        sys.stdout.write(text + "\n")


def _draw(names: list[str] | None, since: str, out: Path) -> Path:
    """The PNGs for the report into ``out``; a window with nothing to draw is a note, not a failed report."""
    from modelfleet.cli.top_cmds import NothingToDraw, draw_plots

    settings, catalog = load_settings_and_catalog()
    models = [catalog.require(n).name for n in names] if names else None
    try:
        draw_plots(settings, catalog, models, since, out)
    except NothingToDraw as error:
        err_console.print(f"note: no pictures: {error}", highlight=False, markup=False)
    return out


def register(app: typer.Typer) -> None:
    """Add report."""
    app.command()(report)
