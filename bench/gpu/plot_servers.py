"""Plot a ``gpu-servers`` result (from ``servers.py``): output tok/s per round for the three paths.

Runs here, not on the device: ``python -m bench.gpu.plot_servers bench/results/gpu-servers-run1.json``
writes the PNG beside the JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

PATHS = (
    ("direct", "vLLM direct", "#4c72b0"),
    ("edge", "edge process", "#55a868"),
    ("relay", "Modal relay -> edge", "#c44e52"),
)


def plot(result_path: Path) -> Path:
    """One grouped bar per round and path, the medians as lines, the ratios in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data: dict[str, Any] = json.loads(result_path.read_text())
    rounds = data["throughput"]["rounds"]
    summary = data["throughput"]["summary"]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.27
    for offset, (key, label, colour) in enumerate(PATHS):
        values = [r[key]["output_throughput"] for r in rounds]
        xs = [i + (offset - 1) * width for i in range(len(rounds))]
        ax.bar(xs, values, width, label=f"{label} (median {statistics.median(values):,.0f})", color=colour)
    ax.set_xticks(range(len(rounds)))
    ax.set_xticklabels([f"{i + 1}: {' > '.join(p[0] for p in r['order'])}" for i, r in enumerate(rounds)], fontsize=8)
    ax.set_xlabel("round (order: d = direct, e = edge, r = relay)")
    ax.set_ylabel("output tokens/s (c=64, 512 in / 128 out)")
    low = min(r[k]["output_throughput"] for r in rounds for k, _, _ in PATHS)
    high = max(r[k]["output_throughput"] for r in rounds for k, _, _ in PATHS)
    ax.set_ylim(low * 0.9, high * 1.08)
    ax.legend(loc="upper center", ncol=3, fontsize=8)
    ax.set_title(
        f"{result_path.stem}: edge/direct {summary['edge_over_direct']:.3f}, "
        f"relay/direct {summary['relay_over_direct']:.3f}, relay/edge {summary['relay_over_edge']:.3f} "
        f"(medians of {len(rounds)} rounds; H200, vLLM 0.25, 7.24B bf16)",
        fontsize=9,
    )
    fig.tight_layout()
    out = result_path.with_suffix(".png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(plot(Path(name)))
