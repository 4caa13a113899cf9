"""Fleet scale: ``fleet validate`` + ``fleet plan`` over 500 generated model folders.

Goal: both together in <= 2 s, so a pull-request check stays instant however large
the fleet grows. Measured through the real CLI (a fresh process each time, as CI runs
it), on folders generated from the example models with varied numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import measure, save, summary

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ["llama31-8b-instruct", "qwen25-vl-7b-instruct", "smollm2-135m", "llama33-70b-instruct"]


def generate_fleet(target: Path, count: int) -> None:
    """A repo copy with ``count`` model folders cycling through the examples (distinct served names)."""
    shutil.copy(ROOT / "fleet.toml", target / "fleet.toml")
    shutil.copytree(ROOT / "volumes", target / "volumes")
    for index in range(count):
        template = TEMPLATES[index % len(TEMPLATES)]
        text = (ROOT / "models" / template / "model.toml").read_text()
        text = text.replace('served_model_name = "', f'served_model_name = "m{index}-', 1)
        text = text.replace("max_model_len = 8192", f"max_model_len = {4096 + 128 * (index % 16)}")
        folder = target / "models" / f"model-{index:04d}"
        folder.mkdir(parents=True)
        (folder / "model.toml").write_text(text)


def main() -> None:
    """Run and save the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch)
        generate_fleet(repo, args.models)
        (repo / "state.json").write_text("{}\n")
        env = {**os.environ, "FLEET_ROOT": str(repo), "COLUMNS": "200"}
        fleet = [sys.executable, "-m", "modelfleet"]

        def validate() -> None:
            done = subprocess.run([*fleet, "validate"], env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-2000:]

        def plan() -> None:
            done = subprocess.run(
                [*fleet, "plan", "--state", str(repo / "state.json"), "--format", "json"],
                env=env,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stderr[-2000:]
            assert len(json.loads(done.stdout)["entries"]) == args.models

        validate_s = summary(measure(validate, args.repeats))
        plan_s = summary(measure(plan, args.repeats))
    total = validate_s["median"] + plan_s["median"]
    data = {
        "models": args.models,
        "repeats": args.repeats,
        "validate_seconds": validate_s,
        "plan_seconds": plan_s,
        "validate_plus_plan_median_seconds": total,
        "goal_seconds": 2.0,
        "goal_met": total <= 2.0,
        "command": f"fleet validate; fleet plan --state FILE --format json  (x{args.repeats}, {args.models} folders)",
    }
    bars = {
        "validate": (validate_s["median"], validate_s["min"], validate_s["max"]),
        "plan": (plan_s["median"], plan_s["min"], plan_s["max"]),
    }
    path = save("fleet-scale", data, bars, ylabel="seconds (median, min-max)", title=f"{args.models} model folders")
    print(f"validate {validate_s['median']:.2f}s + plan {plan_s['median']:.2f}s = {total:.2f}s (goal <= 2 s) -> {path}")


if __name__ == "__main__":
    main()
