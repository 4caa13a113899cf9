"""What the memory-snapshot launcher saves in vLLM's API-server process: its imports.

``bench/launcher_preload.py`` times a whole vLLM start, which on CPU is dominated by the
engine-core and worker processes vLLM spawns (each imports torch and vLLM afresh, with
or without the launcher), so its ratio is mostly noise on a shared 2-core machine. This
isolates the part the launcher changes: seconds to ``import
vllm.entrypoints.openai.api_server`` in a fresh interpreter (a cold start), against the
same import in an interpreter that already imported ``launcher.PRELOAD`` (what a
restored launcher does after its release). Each sample is its own subprocess; the two
sides alternate.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench.harness import save, summary
from modelfleet.runtime.launcher import PRELOAD

SERVER_MODULE = "vllm.entrypoints.openai.api_server"
TIMED_IMPORT = (
    "import importlib, time; {pre}; t = time.perf_counter(); importlib.import_module({module!r}); "
    "print('SECONDS', time.perf_counter() - t)"
)


def import_seconds(preloaded: bool) -> float:
    """Seconds one fresh interpreter spends importing vLLM's server module (after PRELOAD, or not)."""
    pre = f"[importlib.import_module(m) for m in {list(PRELOAD)!r}]" if preloaded else "pass"
    code = TIMED_IMPORT.format(pre=pre, module=SERVER_MODULE)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("SECONDS "))
    return float(line.split()[1])


def main() -> None:
    """Run and save the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import_seconds(False)  # untimed: page cache
    results: dict[str, list[float]] = {"cold start: import server": [], "released launcher: import server": []}
    for round_ in range(args.repeats):
        for preloaded in (False, True) if round_ % 2 == 0 else (True, False):
            key = "released launcher: import server" if preloaded else "cold start: import server"
            results[key].append(import_seconds(preloaded))
        print({k: [round(x, 2) for x in v] for k, v in results.items()}, flush=True)
    summaries = {k: summary(v) for k, v in results.items()}
    cold = summaries["cold start: import server"]["median"]
    released = summaries["released launcher: import server"]["median"]
    data = {
        "repeats": args.repeats,
        "module": SERVER_MODULE,
        "preload": list(PRELOAD),
        "import_seconds": summaries,
        "saved_seconds_median": cold - released,
        "saved_share": (cold - released) / cold,
        "command": "python -c 'import <server module>' vs the same after importing launcher.PRELOAD, one process each",
    }
    bars = {k: (s["median"], s["min"], s["max"]) for k, s in summaries.items()}
    path = save("launcher-imports", data, bars, ylabel="seconds", title="vLLM API server import, CPU")
    print(f"saved {cold - released:.1f} s of {cold:.1f} s ({(cold - released) / cold:.0%}) -> {path}")


if __name__ == "__main__":
    main()
