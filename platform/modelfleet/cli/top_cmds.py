"""``fleet top``: replicas, queues, latency, tokens/s and dollars per model, live or once.

Reads each engine's own metrics (local) or Modal's own stats, metrics and billing (observe/),
never the public endpoint: watching the fleet must not keep a scaled-to-zero container awake.
Where the platform reports cost (Modal's billing), a second table puts the last full hour's
bill beside the price table's figure and the difference.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from modelfleet.catalog import Catalog
from modelfleet.cli.common import UserError, console, err_console, load_settings_and_catalog, user_errors
from modelfleet.observe.exposition import DEFAULT_TTL, json_text, prometheus_text
from modelfleet.observe.fleet_view import FleetFrame, compare_json, frame_once, live_frames, registry_for
from modelfleet.observe.history import history_path, plot_frames, record_frame
from modelfleet.observe.modal_cost import CostTruth
from modelfleet.observe.report import write_reports
from modelfleet.observe.view import ModelView
from modelfleet.settings import ComparedApi, FleetSettings

TopFormat = Literal["table", "json"]
MetricsFormat = Literal["prometheus", "json"]


def top(
    once: bool = typer.Option(False, "--once", help="Print one frame and exit (for scripts)."),
    output: TopFormat = typer.Option("table", "--format", help="table or json (json implies --once)."),
    interval: float = typer.Option(2.0, "--interval", min=0.2, max=300.0, help="Seconds between scrapes (rates)."),
    record: bool = typer.Option(True, "--record/--no-record", help="Append each frame to the state's history."),
) -> None:
    """Per model: replicas, requests, TTFT and time per output token p50/p95, tokens/s, KV cache, $/h, $/1M out."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        history = history_path(settings.state_path) if record else None
        if output == "json":
            frame = frame_once(settings, catalog, interval)
            _record(history, frame)
            document = {
                "environment": settings.environment_label,
                "target": settings.target,
                "interval_s": interval,
                "models": [v.as_json() for v in frame.views],
                "compare": compare_json(settings.compare),
                "costs": [c.as_json() for c in frame.costs],
                "notes": frame.notes,
                **frame.platform,
            }
            print(json.dumps(document, indent=2))
            return
        if once:
            frame = frame_once(settings, catalog, interval)
            _record(history, frame)
            console.print(_render(frame, settings.compare))
            return
        next_frame = live_frames(settings, catalog)
        with Live(_render(next_frame(), settings.compare), console=console, refresh_per_second=1) as live:
            while True:
                time.sleep(interval)  # the refresh period of a live view
                frame = next_frame()
                _record(history, frame)
                live.update(_render(frame, settings.compare))


def _record(history: Path | None, frame: FleetFrame) -> None:
    if history is not None and frame.views:
        record_frame(history, frame.views, costs=[c.as_json() for c in frame.costs])


def _render(frame: FleetFrame, compare: ComparedApi | None) -> Group:
    """The rows, then (where the platform reports cost) the cost truth, then one line per note."""
    parts: list[Table | Text] = [top_table(frame.views, compare)]
    if frame.costs:
        parts.append(cost_table(frame.costs))
    parts.extend(Text(note) for note in frame.notes)
    return Group(*parts)


def cost_table(costs: list[CostTruth]) -> Table:
    """The last full hour per model: GPU-seconds Modal counted, the price table's $, Modal's bill, the difference."""
    table = Table(title="cost, last full hour (Modal's figures beside the price table)")
    for column in ("model", "GPU-s (Modal)", "$ price table", "$ billed (Modal)", "$ difference"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for cost in costs:
        table.add_row(
            cost.model,
            _number(cost.gpu_seconds),
            _dollars(cost.price_table_dollars),
            _dollars(cost.billed_dollars),
            "-" if cost.difference_dollars is None else f"{cost.difference_dollars:+,.2f}",
        )
    return table


def _dollars(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def plots(
    model: str = typer.Argument("all", help="A model's name, or all (every model with figures)."),
    since: str = typer.Option("6h", "--since", help="How far back: 30m, 6h, 2d (on Modal at most 7d)."),
    out: Path = typer.Option(Path("fleet-plots"), "--out", help="Folder for the PNGs (one <model>.png each)."),
) -> None:
    """A PNG per model (load, latency percentiles, cost over time): recorded frames, and on Modal Modal's own figures."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        models = None if model == "all" else [catalog.require(model).name]
        draw_plots(settings, catalog, models, since, out)


class NothingToDraw(UserError):
    """The window holds no figures to draw (``fleet report --since`` says so and goes on)."""


def draw_plots(
    settings: FleetSettings, catalog: Catalog, models: list[str] | None, since: str, out: Path
) -> list[Path]:
    """The PNGs of ``models`` (None: every model with figures) over ``since`` into ``out``; notes go to stderr.

    ``fleet plots`` and ``fleet report --since`` draw through this. A window without figures,
    is ``NothingToDraw``; a ``since`` that is not a duration (or beyond what the target keeps)
    a plain ``UserError``; each names why.
    """
    try:
        source = plot_frames(settings, catalog, models, since, time.time())
    except ValueError as error:  # --since that is not a duration
        raise UserError(str(error)) from None
    for note in source.notes:
        err_console.print(f"note: {note}", highlight=False, markup=False)
    if source.empty:
        raise NothingToDraw(source.empty)
    written = write_reports(source.frames, out)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
    return written


def top_table(views: list[ModelView], compare: ComparedApi | None) -> Table:
    """The frame: one row per model, then the compared API's price when fleet.toml has one."""
    table = Table(title="fleet top", caption=_caption(compare))
    for column in (
        "model",
        "replicas run/start",
        "requests run/wait",
        "TTFT p50/p95",
        "TPOT p50/p95",
        "tok/s in/out",
        "KV cache",
        "$/h",
        "$/1M out",
    ):
        table.add_column(column, justify="left" if column == "model" else "right")
    for view in views:
        table.add_row(
            view.model,
            f"{view.replicas_running}/{view.replicas_starting}",
            f"{view.requests_running:.0f}/{view.requests_waiting:.0f}",
            f"{_ms(view.ttft_p50)}/{_ms(view.ttft_p95)}",
            f"{_ms(view.tpot_p50)}/{_ms(view.tpot_p95)}",
            f"{_number(view.tokens_in_per_s)}/{_number(view.tokens_out_per_s)}",
            "-" if view.kv_cache_use is None else f"{view.kv_cache_use:.0%}",
            "-" if view.dollars_per_hour is None else f"{view.dollars_per_hour:,.2f}",
            "-" if view.dollars_per_million_out is None else f"{view.dollars_per_million_out:,.2f}",
        )
    return table


def _caption(compare: ComparedApi | None) -> str:
    if compare is None:
        return "no [compare] table in fleet.toml: add the API you replaced to see its price here"
    return (
        f"compare: {compare.name} ${compare.input_per_million:,.2f} in / ${compare.output_per_million:,.2f} out "
        f"per 1M tokens ({compare.date}, {compare.source})"
    )


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}ms"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def metrics(
    output: MetricsFormat = typer.Option("prometheus", "--format", help="prometheus (text exposition) or json."),
) -> None:
    """The fleet's series (labels model, target, environment; replica where the target has per-replica figures)."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        registry = registry_for(settings, catalog, DEFAULT_TTL)
        print(prometheus_text(registry) if output == "prometheus" else json_text(registry), end="")


def register(app: typer.Typer) -> None:
    """Add ``fleet top`` and ``fleet metrics``."""
    app.command("top")(top)
    app.command("metrics")(metrics)
    # `fleet report` is the post-deploy report (postdeploy_cmds); these are the fleet view's pictures.
    app.command("plots")(plots)
