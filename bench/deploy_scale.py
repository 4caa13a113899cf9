"""Fleet scale, deploys: ``fleet deploy-all`` of N generated models against the loopback Modal
API, at deploy concurrency 1 and 8, side by side.

Every deploy is a real ``modal deploy`` (the real client, in its own process) talking to
the recording server the contract tests use, so what is measured is the platform's
fan-out plus the client's own work. Goal: concurrency 8 at least 5x faster than 1.
On Modal's cloud each deploy mostly waits on the network (image and app calls), which
parallelises almost perfectly; on this 2-core machine each client process also burns
CPU starting up, which caps the speed-up near the core count -- so the figure here is
a lower bound.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import create_workspace

from bench.harness import save, summary

ROOT = Path(__file__).resolve().parents[1]


def generate_fleet(repo: Path, count: int) -> None:
    """A git repo with ``count`` copies of the demo model (distinct served names), committed."""
    shutil.copy(ROOT / "fleet.toml", repo / "fleet.toml")
    shutil.copytree(ROOT / "volumes", repo / "volumes")
    text = (ROOT / "models" / "smollm2-135m" / "model.toml").read_text()
    for index in range(count):
        folder = repo / "models" / f"demo-{index:03d}"
        folder.mkdir(parents=True)
        (folder / "model.toml").write_text(
            text.replace('served_model_name = "smollm2-135m"', f'served_model_name = "demo-{index:03d}"')
        )
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-qm", "fleet"],
    ):
        subprocess.run(command, cwd=repo, check=True)


def deploy_all(repo: Path, concurrency: int, count: int) -> float:
    """Seconds for one ``fleet deploy-all --yes`` against a fresh recorder."""
    with ModalApiRecorder() as api:
        create_workspace(api, repo)  # the recorder is strict: volumes and secrets must exist
        env = api.subprocess_env()
        for key in [k for k in env if k.startswith("FLEET_")]:
            del env[key]
        env.update(
            FLEET_TARGET="modal",
            FLEET_ROOT=str(repo),
            FLEET_DEPLOY_CONCURRENCY=str(concurrency),
            CI="1",
            PYTHONPATH=f"{ROOT / 'platform'}:{ROOT}",
        )
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "modelfleet", "deploy-all", "--yes"],
            env=env,
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0 or f"{count} ok" not in done.stdout:
            raise RuntimeError(
                f"deploy-all failed at concurrency {concurrency}:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
            )
        assert len(api.requests("AppPublish")) == count
    return seconds


def main() -> None:
    """Run and save the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    os.environ.pop("FLEET_ROOT", None)
    samples: dict[int, list[float]] = {c: [] for c in args.concurrency}
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch)
        generate_fleet(repo, args.models)
        for _ in range(args.repeats):
            for concurrency in args.concurrency:
                samples[concurrency].append(deploy_all(repo, concurrency, args.models))
                print(f"concurrency {concurrency}: {samples[concurrency][-1]:.1f}s", flush=True)
    stats = {str(c): summary(s) for c, s in samples.items()}
    low, high = min(args.concurrency), max(args.concurrency)
    speedup = stats[str(low)]["median"] / stats[str(high)]["median"]
    data = {
        "models": args.models,
        "repeats": args.repeats,
        "seconds": stats,
        f"speedup_{high}_over_{low}": speedup,
        "goal_speedup_at_least": 5.0,
        "goal_met": speedup >= 5.0,
        "cpus": os.cpu_count(),
        "command": "FLEET_TARGET=modal FLEET_DEPLOY_CONCURRENCY=C fleet deploy-all --yes (real modal 1.6.4 client, loopback API)",
    }
    bars = {f"concurrency {c}": (s["median"], s["min"], s["max"]) for c, s in stats.items()}
    path = save(
        "deploy-scale", data, bars, ylabel="seconds for deploy-all", title=f"deploy-all of {args.models} models"
    )
    print(f"speed-up {high} vs {low}: {speedup:.2f}x (goal >= 5x) -> {path}")


if __name__ == "__main__":
    main()
