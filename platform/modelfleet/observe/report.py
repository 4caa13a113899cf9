"""``fleet plots``: one PNG per model from the recorded frames: load, latency percentiles and cost over time.

The cost panel shows $/h now at the price table (every frame) and, where frames carry a cost
truth (Modal: ``observe/modal_cost.py``), each full hour's cost twice: the price table's
figure for the GPU-seconds Modal counted, and what Modal billed -- drawn at the hour's end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelfleet.errors import FleetError

FIGURE_SIZE = (10.0, 9.0)


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
            "fleet plots: matplotlib is not installed; install it (pip install 'modelfleet[dev]' or matplotlib)"
        ) from None

    matplotlib.use("Agg")  # files only: no display on a CI runner
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    costs = hourly_costs(frames)
    for model, rows in sorted(model_series(frames).items()):
        times = [datetime.fromtimestamp(r["at"], UTC) for r in rows]
        figure, (load, latency, cost) = plt.subplots(3, 1, figsize=FIGURE_SIZE, sharex=True)
        load.plot(times, [r["requests_running"] for r in rows], label="requests running")
        load.plot(times, [r["requests_waiting"] for r in rows], label="requests waiting")
        load.plot(times, [r["tokens_out_per_s"] or 0.0 for r in rows], label="output tokens/s")
        load.set_title(f"{model}: load")
        load.legend()
        for key, label in (
            ("ttft_p50", "TTFT p50"),
            ("ttft_p95", "TTFT p95"),
            ("tpot_p50", "TPOT p50"),
            ("tpot_p95", "TPOT p95"),
        ):
            latency.plot(times, [r[key] if r[key] is not None else float("nan") for r in rows], label=label)
        latency.set_ylabel("seconds")
        latency.set_title("latency percentiles")
        latency.legend()
        cost.plot(times, [r["dollars_per_hour"] or 0.0 for r in rows], label="$/h now (price table)")
        hours = costs.get(model, [])
        ends = [datetime.fromtimestamp(c["until"], UTC) for c in hours]
        for key, label in (
            ("price_table_dollars", "$ per full hour, price table"),
            ("billed_dollars", "$ billed (Modal)"),
        ):
            if any(c[key] is not None for c in hours):
                values = [c[key] if c[key] is not None else float("nan") for c in hours]
                cost.plot(ends, values, marker="o", linestyle="--", label=label)
        cost.set_ylabel("USD per hour")
        cost.set_title("cost")
        cost.legend()
        figure.autofmt_xdate()
        path = out / f"{model}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written
