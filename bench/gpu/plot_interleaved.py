"""Plot the interleaved TTFT load of ``gateway.py --interleaved`` (``bench/gpu/interleaved.py``).

Runs here, not on the device: ``python -m bench.gpu.plot_interleaved bench/results/gpu-gateway-interleaved.json``
writes ``gpu-gateway-interleaved.png`` beside it: per concurrency, the added median TTFT of a bare
second edge hop and of the gateway against direct -- the run's figure as a bar, the bootstrap 95%
interval as a whisker, each quarter of the run as a dot -- and the +2 ms goal as a line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.gpu.plot_gateway import GOAL_ADDED_TTFT_MS

TOP_MS = 12.0
SIDES = (("edge-hop", "#8172b2"), ("gateway", "#4c72b0"))


def plot(path: Path) -> Path:
    """One panel; concurrencies in the order the run measured them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data: dict[str, Any] = json.loads(path.read_text())["interleaved"]
    per = data["per_concurrency"]
    fig, axis = plt.subplots(figsize=(9, 4.8))
    width = 0.38
    for offset, (side, colour) in enumerate(SIDES):
        for index, entry in enumerate(per.values()):
            added = entry["added_median_ttft_ms"][side]
            x = index + (offset - 0.5) * width
            low, high = added["bootstrap_95"]
            axis.bar(x, added["run"], width, color=colour, label=side if index == 0 else None)
            axis.errorbar(x, added["run"], yerr=[[added["run"] - low], [high - added["run"]]], color="black", capsize=3)
            if added["run"] > TOP_MS:  # clipped: say the figure
                axis.annotate(f"{added['run']:.1f} ms", (x, TOP_MS), ha="center", va="top", fontsize=8, color="white")
            quarters = [v for v in added["segments"] if v is not None]
            axis.scatter([x] * len(quarters), quarters, color="black", s=10, zorder=3)
    axis.axhline(GOAL_ADDED_TTFT_MS, color="#c44e52", linestyle="--", label=f"goal <= +{GOAL_ADDED_TTFT_MS} ms")
    axis.axhline(0, color="grey", linewidth=0.8)
    axis.set_xticks(range(len(per)))
    axis.set_xticklabels([f"c={c}\n{entry['requests']} requests" for c, entry in per.items()])
    axis.set_ylabel("added median TTFT vs direct (ms)")
    axis.set_ylim(-6, TOP_MS)
    axis.set_title("H200, fronts interleaved in one load: bar = run, whisker = bootstrap 95%, dots = quarters")
    axis.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    out = path.with_suffix(".png")
    fig.savefig(out, dpi=110)
    return out


if __name__ == "__main__":
    print(plot(Path(sys.argv[1])))
