"""Plot ``gpu-gateway`` results (from ``gateway.py``): gateway/direct throughput and added median TTFT.

Runs here, not on the device: ``python -m bench.gpu.plot_gateway bench/results/gpu-gateway.json
[more results ...]`` writes ``gpu-gateway.png`` beside the first JSON; each file's concurrencies
are drawn as their own bars, labelled with the run's file name, pairs and prompts per run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

GOAL_RATIO = 0.97
GOAL_ADDED_TTFT_MS = 2.0


def plot(results: list[Path]) -> Path:
    """Left: throughput ratio per concurrency and run; right: added median TTFT (ms); goals as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels: list[str] = []
    ratios: list[float] = []
    added: list[float] = []
    for path in results:
        data: dict[str, Any] = json.loads(path.read_text())
        for c, entry in data["summary"]["per_concurrency"].items():
            labels.append(f"c={c}\n{entry['pairs']}x{entry['prompts_per_run']}\n{path.stem}")
            ratios.append(entry["throughput_ratio_gateway_over_direct"])
            added.append(entry["added_median_ttft_ms"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    xs = range(len(labels))
    left.bar(xs, ratios, color="#55a868")
    left.axhline(GOAL_RATIO, color="#c44e52", linestyle="--", label=f"goal >= {GOAL_RATIO}")
    left.set_ylim(0.9, 1.03)
    left.set_ylabel("output tok/s, gateway / direct (median of pairs)")
    right.bar(xs, added, color=["#c44e52" if a > GOAL_ADDED_TTFT_MS else "#4c72b0" for a in added])
    right.axhline(GOAL_ADDED_TTFT_MS, color="#c44e52", linestyle="--", label=f"goal <= +{GOAL_ADDED_TTFT_MS} ms")
    right.set_ylabel("added median TTFT, ms (gateway - direct)")
    for ax, values, fmt in ((left, ratios, "{:.4f}"), (right, added, "{:+.2f}")):
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, fontsize=7)
        ax.legend(fontsize=8, loc="lower right" if ax is left else "upper left")
        for x, value in zip(xs, values, strict=True):
            ax.annotate(fmt.format(value), (x, value), ha="center", va="bottom", fontsize=8)
    fig.suptitle(
        "Gateway (own process) in front of the edge vs the edge directly: H200, vLLM 0.25, 7.24B bf16, "
        "512 in / 128 out (x-labels: concurrency, pairs x prompts per run, file)",
        fontsize=9,
    )
    fig.tight_layout()
    out = results[0].with_suffix(".png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(plot([Path(name) for name in sys.argv[1:]]))
