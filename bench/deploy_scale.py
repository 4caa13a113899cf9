"""Fleet scale, deploys: ``fleet deploy-all`` of N generated models against the loopback Modal
API, at deploy concurrency 1 and 8, side by side.

Every deploy is the real modal client talking to the recording server the contract tests
use, so what is measured is the platform's fan-out plus the client's own work. Against Modal
a deploy mostly waits on the control plane, so the recorder answers each RPC after the wait
of a latency profile (``tests/support/modal_api_latency.toml``, with its sources; ``--latency
none`` measures client CPU alone). Goal: concurrency 8 at least 5x faster than 1 with the
profile on, on this 2-core machine. Also reported: the client CPU-seconds per model deploy
(every process of ``fleet deploy-all``, summed), and where a ``modal deploy`` process spends
its CPU (``--breakdown``). ``--platform DIR`` runs another copy of ``modelfleet`` (e.g. an
older commit's, from ``git archive``) for a before/after comparison in one run.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.modal_api import API_RPCS, ModalApiRecorder
from tests.support.modal_api_latency import DEFAULT_PROFILE, NO_LATENCY, LatencyProfile
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


def children_cpu_seconds() -> float:
    """User + system CPU of every finished child process (and theirs) of this process."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def deploy_all(
    repo: Path, concurrency: int, count: int, *, latency: LatencyProfile, platform: Path
) -> tuple[float, float]:
    """Seconds and client CPU-seconds of one ``fleet deploy-all --yes`` against a fresh recorder.

    The CPU is that of the ``fleet`` process and every process it started (``modal`` CLI
    runs, git); the recorder runs in this process and is not counted.
    """
    with ModalApiRecorder(latency=latency) as api:
        create_workspace(api, repo)  # the recorder is strict: volumes and secrets must exist
        env = api.subprocess_env()
        for key in [k for k in env if k.startswith("FLEET_")]:
            del env[key]
        env.update(
            FLEET_TARGET="modal",
            FLEET_ROOT=str(repo),
            FLEET_DEPLOY_CONCURRENCY=str(concurrency),
            CI="1",
            PYTHONPATH=f"{platform}:{ROOT}",
        )
        cpu_before = children_cpu_seconds()
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
        cpu = children_cpu_seconds() - cpu_before
        if done.returncode != 0 or f"{count} ok" not in done.stdout:
            raise RuntimeError(
                f"deploy-all failed at concurrency {concurrency}:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
            )
        assert len(api.requests("AppPublish")) == count
    return seconds, cpu


def client_cpu_breakdown(repo: Path, platform: Path) -> dict[str, float]:
    """Where one ``modal deploy`` process spends its CPU (no latency), in CPU-seconds.

    Three fresh interpreters, each measured alone: importing the modal CLI; importing the
    app module (``entry``: modelfleet, pydantic, the app built from a bundle); and a whole
    ``modal deploy -m ...entry`` against a recorder, as the old one-process-per-model path ran it.
    """
    env_base = {**os.environ, "PYTHONPATH": f"{platform}:{ROOT}", "FLEET_ROOT": str(repo), "FLEET_TARGET": "modal"}
    with ModalApiRecorder() as api:
        create_workspace(api, repo)
        env = api.subprocess_env(env_base)
        bundle = subprocess.run(
            [sys.executable, "-c", _BUNDLE_SCRIPT], env=env, cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        env["FLEET_MODAL_BUNDLE"] = bundle
        steps = {
            "python_start": [sys.executable, "-c", "pass"],
            "import_modal_cli": [sys.executable, "-c", "import modal.cli.entry_point"],
            "import_app_module": [sys.executable, "-c", "import modelfleet.targets.modal.entry"],
            "modal_deploy_process": [
                sys.executable, "-m", "modal", "deploy", "-m", "modelfleet.targets.modal.entry",
                "--name", "fleet-demo-000", "--env", "main",
            ],
            "modal_app_history_process": [
                sys.executable, "-m", "modal", "app", "history", "fleet-demo-000", "--env", "main", "--json"
            ],
        }  # fmt: skip
        result: dict[str, float] = {}
        for name, command in steps.items():
            samples = []
            for _ in range(3):
                before = children_cpu_seconds()
                subprocess.run(command, env=env, cwd=repo, check=True, capture_output=True)
                samples.append(children_cpu_seconds() - before)
            result[name] = statistics.median(samples)
    return result


_BUNDLE_SCRIPT = """
from modelfleet.catalog import load_catalog
from modelfleet.settings import FleetSettings
from modelfleet.targets.modal.bundle import make_bundle
settings = FleetSettings()
catalog = load_catalog(settings)
print(make_bundle(catalog.require("demo-000"), catalog, settings).to_env())
"""


def load_latency(value: str) -> LatencyProfile:
    """``none`` (the recorder answers at once) or a profile file (default: the one with sources)."""
    if value == "none":
        return NO_LATENCY
    return LatencyProfile.from_file(Path(value), known_rpcs=API_RPCS)


def main() -> None:
    """Run and save the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--latency", default=str(DEFAULT_PROFILE), help="a latency profile file, or none")
    parser.add_argument("--platform", type=Path, default=ROOT / "platform", help="folder holding modelfleet")
    parser.add_argument("--name", default="deploy-scale", help="result name under bench/results/")
    parser.add_argument("--breakdown", action="store_true", help="also measure where a modal deploy spends CPU")
    args = parser.parse_args()
    os.environ.pop("FLEET_ROOT", None)
    latency = load_latency(args.latency)
    platform = args.platform.resolve()
    samples: dict[int, list[float]] = {c: [] for c in args.concurrency}
    cpu: dict[int, list[float]] = {c: [] for c in args.concurrency}
    breakdown: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch)
        generate_fleet(repo, args.models)
        if args.breakdown:
            breakdown = client_cpu_breakdown(repo, platform)
            print("client CPU-seconds:", {k: round(v, 2) for k, v in breakdown.items()}, flush=True)
        for _ in range(args.repeats):
            for concurrency in args.concurrency:
                seconds, cpu_seconds = deploy_all(repo, concurrency, args.models, latency=latency, platform=platform)
                samples[concurrency].append(seconds)
                cpu[concurrency].append(cpu_seconds / args.models)
                print(
                    f"concurrency {concurrency}: {seconds:.1f}s, client CPU {cpu_seconds / args.models:.2f} s/model",
                    flush=True,
                )
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
        "client_cpu_seconds_per_model": {str(c): summary(s) for c, s in cpu.items()},
        "client_cpu_breakdown_seconds": breakdown,
        "latency_profile": latency.describe(),
        "platform": str(platform),
        "cpus": os.cpu_count(),
        "command": "FLEET_TARGET=modal FLEET_DEPLOY_CONCURRENCY=C fleet deploy-all --yes "
        "(real modal 1.6.4 client, loopback API with the latency profile)",
    }
    bars = {f"concurrency {c}": (s["median"], s["min"], s["max"]) for c, s in stats.items()}
    title = f"deploy-all of {args.models} models" + (", Modal latency profile" if latency.enabled else ", no latency")
    path = save(args.name, data, bars, ylabel="seconds for deploy-all", title=title)
    print(f"speed-up {high} vs {low}: {speedup:.2f}x (goal >= 5x) -> {path}")


if __name__ == "__main__":
    main()
