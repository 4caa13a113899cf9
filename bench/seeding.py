"""Seeding: the first seed of the demo model against a second one, and verification speed.

A second ``fleet seed`` of a seeded model must download nothing and finish in seconds
(it only re-hashes the files against the manifest), so CI can seed on every merge.
Both seeds run here side by side on a fresh volume folder; the figures are the
speed-up and the verification rate in GB/s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from bench.harness import measure, save, summary
from modelfleet.catalog import load_catalog
from modelfleet.settings import FleetSettings
from modelfleet.volumes import seed, verify_model

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Run and save the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("FLEET_ROOT", str(ROOT))
    model = load_catalog(FleetSettings()).require(args.model)
    with tempfile.TemporaryDirectory(dir=ROOT / ".fleet" if (ROOT / ".fleet").is_dir() else None) as scratch:
        root = Path(scratch)
        first = measure(lambda: seed(model, root), 1)
        result = seed(model, root)
        assert result.skipped, "the second seed downloaded again"
        second = summary(measure(lambda: seed(model, root), args.repeats))
        verify = summary(measure(lambda: verify_model(model, root), args.repeats))
    size_gb = result.bytes / 1e9
    data = {
        "model": args.model,
        "bytes": result.bytes,
        "files": result.files,
        "first_seed_seconds": first[0],
        "second_seed_seconds": second,
        "verify_seconds": verify,
        "verify_gb_per_s": size_gb / verify["median"],
        "speedup_second_vs_first": first[0] / second["median"],
        "command": "modelfleet.volumes.seed(model, fresh_root) once, then again x repeats; verify_model x repeats",
    }
    bars = {
        "first seed": (first[0], first[0], first[0]),
        "second seed": (second["median"], second["min"], second["max"]),
        "verify": (verify["median"], verify["min"], verify["max"]),
    }
    path = save("seeding", data, bars, ylabel="seconds", title=f"seeding {args.model} ({size_gb:.2f} GB)")
    print(
        f"first seed {first[0]:.1f}s, second {second['median']:.2f}s ({data['speedup_second_vs_first']:.0f}x), "
        f"verify {data['verify_gb_per_s']:.2f} GB/s -> {path}"
    )


if __name__ == "__main__":
    main()
