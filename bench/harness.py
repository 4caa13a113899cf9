"""Shared by the benchmarks: repeat, summarise (median and spread), save JSON + a PNG bar plot.

Benchmarks compare two sides measured in the same run, so a slow or busy machine moves
both; the figure reported is their ratio, never an absolute time checked by a test.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def measure(action: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` runs of ``action``."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def summary(samples: list[float]) -> dict[str, Any]:
    """Median, min, max and the samples themselves."""
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "stdev": statistics.stdev(samples) if len(samples) > 1 else 0.0,
        "samples": samples,
    }


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {"python": platform.python_version(), "cpus": _cpus(), "machine": platform.machine(), "commit": commit}


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def save(
    name: str, data: dict[str, Any], bars: dict[str, tuple[float, float, float]], *, ylabel: str, title: str
) -> Path:
    """Write ``results/<name>.json`` and ``results/<name>.png`` (bars: label -> (median, low, high))."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **data,
    }
    json_path = RESULTS / f"{name}.json"
    json_path.write_text(json.dumps(data, indent=2, default=_plain) + "\n")
    _plot(RESULTS / f"{name}.png", bars, ylabel=ylabel, title=title)
    return json_path


def _plain(value: Any) -> Any:
    """numpy scalars (from vLLM's benchmark results) as plain Python numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a result file")


def _plot(path: Path, bars: dict[str, tuple[float, float, float]], *, ylabel: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(bars)
    medians = [bars[k][0] for k in labels]
    low = [bars[k][0] - bars[k][1] for k in labels]
    high = [bars[k][2] - bars[k][0] for k in labels]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(labels)), 4))
    ax.bar(labels, medians, yerr=[low, high], capsize=6, color="#4c72b0")
    for index, value in enumerate(medians):
        ax.annotate(
            f"{value:.3g}",
            (index, value),
            ha="center",
            va="bottom",
            fontsize=9,
            xytext=(0, 3),
            textcoords="offset points",
        )
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
