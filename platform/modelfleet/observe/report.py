"""``fleet plots``: one PNG per model: load, latency percentiles and cost over time.

The frames come from ``history.plot_frames``: what ``fleet top`` recorded (every target) and,
on Modal, rows built from Modal's own figures (``modal_history``). A row carries whichever
figures its source has, and each line is drawn from the rows that have its figure, so both
kinds sit in one picture. The cost panel says where each figure comes from: $/h at the price
table (recorded frames: the replicas now; Modal's rows: the containers Modal counted each
minute), and, per full hour where frames carry a cost truth, the price table's figure for
the GPU-seconds Modal counted and what Modal billed -- drawn at the hour's end. When Modal's
bill is not there (billing refused), the panel's title says the costs are the price table's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelfleet.errors import FleetError

FIGURE_SIZE = (10.0, 9.0)
# (row key, legend label) per panel; a line is drawn only where some row has the figure.
LOAD_LINES = (
    ("requests_running", "requests running"),
    ("requests_waiting", "requests waiting"),
    ("tokens_out_per_s", "output tokens/s"),
    ("containers", "containers (Modal, mean per minute)"),
)
LATENCY_LINES = (
    ("ttft_p50", "TTFT p50"),
    ("ttft_p95", "TTFT p95"),
    ("tpot_p50", "TPOT p50"),
    ("tpot_p95", "TPOT p95"),
    ("latency_p50", "request latency p50 (Modal)"),
    ("latency_p95", "request latency p95 (Modal)"),
)
COST_LINES = (
    ("dollars_per_hour", "$/h now (price table)"),
    ("containers_dollars_per_hour", "$/h, Modal's containers x price table"),
)
HOUR_MARKS = (
    ("price_table_dollars", "$ per full hour, price table x Modal's GPU-seconds"),
    ("billed_dollars", "$ per full hour, Modal's bill"),
)


def model_series(frames: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each model's rows over time, every row stamped with its frame's time."""
    series: dict[str, list[dict[str, Any]]] = {}
    for frame in frames:
        for row in frame["models"]:
            series.setdefault(row["model"], []).append({**row, "at": frame["at"]})
    return series


def hourly_costs(frames: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each model's cost truths, one per billed hour (the latest frame's wins), oldest first."""
    hours: dict[str, dict[float, dict[str, Any]]] = {}
    for frame in frames:
        for cost in frame.get("costs", []):
            hours.setdefault(cost["model"], {})[float(cost["until"])] = cost
    return {model: [by_end[end] for end in sorted(by_end)] for model, by_end in hours.items()}


def write_reports(frames: list[dict[str, Any]], out: Path) -> list[Path]:
    """One ``<model>.png`` per model in ``out``; the paths written."""
    try:
        import matplotlib
    except ImportError:
        raise FleetError(
            "fleet plots: matplotlib is not installed; install it (make install-plots, or pip install 'modelfleet[plots]')"
        ) from None

    matplotlib.use("Agg")  # files only: no display on a CI runner
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    costs = hourly_costs(frames)
    for model, rows in sorted(model_series(frames).items()):
        if not rows:
            continue
        figure, (load, latency, cost) = plt.subplots(3, 1, figsize=FIGURE_SIZE, sharex=True)
        _lines(load, rows, LOAD_LINES)
        for name in sorted({name for row in rows for name in row.get("calls_per_minute", {})}):
            points = [(r["at"], r["calls_per_minute"][name]) for r in rows if name in r.get("calls_per_minute", {})]
            _plot(load, points, f"{name} per minute (Modal)")
        load.set_title(f"{model}: load")
        _legend(load)
        _lines(latency, rows, LATENCY_LINES, marker="o", markersize=3)  # Modal's steps: points, gaps where idle
        latency.set_ylabel("seconds")
        latency.set_title("latency percentiles")
        _legend(latency)
        _lines(cost, rows, COST_LINES)
        hours = costs.get(model, [])
        for key, label in HOUR_MARKS:
            points = [(c["until"], c[key]) for c in hours if c[key] is not None]
            _plot(cost, points, label, marker="o", linestyle="--")
        cost.set_ylabel("USD per hour")
        cost.set_title(_cost_title(hours))
        _legend(cost)
        figure.autofmt_xdate()
        path = out / f"{model}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written


def _cost_title(hours: list[dict[str, Any]]) -> str:
    """Says when the hourly figures are the price table's alone (Modal's bill refused or unread)."""
    if hours and all(c["billed_dollars"] is None for c in hours):
        return "cost (price table: Modal's bill not available)"
    return "cost"


def _lines(axes: Any, rows: list[dict[str, Any]], lines: tuple[tuple[str, str], ...], **style: Any) -> None:
    """Each figure from the rows that carry it; a row whose figure is None (nothing measured) leaves a gap."""
    for key, label in lines:
        points = [(r["at"], r[key]) for r in rows if key in r]
        if any(value is not None for _, value in points):
            _plot(axes, [(at, float("nan") if value is None else value) for at, value in points], label, **style)


def _plot(axes: Any, points: list[tuple[float, float]], label: str, **style: Any) -> None:
    """One line of (Unix seconds, value) points, oldest first; nothing when there is no point."""
    if points:
        points = sorted(points, key=lambda point: point[0])
        axes.plot([datetime.fromtimestamp(at, UTC) for at, _ in points], [v for _, v in points], label=label, **style)


def _legend(axes: Any) -> None:
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")
