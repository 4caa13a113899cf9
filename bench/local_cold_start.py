"""Local cold start: ``fleet up`` of the demo model to its first token, against the same
vLLM command started by hand, with an empty and with a seeded vLLM cache root.

The wrapper adds a supervisor process, the edge and token checks; the goal is that all
of it costs at most 10 % over the bare start (ratio <= 1.10). Both sides use the exact
command line the platform builds, so only the wrapping differs. Several vLLM boots on
CPU: this benchmark takes several minutes.
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

import httpx

from bench.harness import save, summary
from modelfleet.catalog import load_catalog
from modelfleet.runtime.command import vllm_command, vllm_env
from modelfleet.runtime.ports import free_port
from modelfleet.runtime.tokens import TokenStore
from modelfleet.settings import FleetSettings
from modelfleet.volumes import checkpoint_dir, local_volume_root, seed

ROOT = Path(__file__).resolve().parents[1]
PROMPT = {"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 8, "stream": True}


def first_token(url: str, served: str, headers: dict[str, str], deadline: float) -> None:
    """Poll until a streamed chat answer yields its first content chunk."""
    while time.monotonic() < deadline:
        try:
            with httpx.stream(
                "POST", f"{url}/v1/chat/completions", json={"model": served, **PROMPT}, headers=headers, timeout=60
            ) as response:
                if response.status_code == 200:
                    for line in response.iter_lines():
                        if line.startswith("data:") and '"content"' in line:
                            return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError("no first token before the deadline")


def bare_start(command: list[str], env: dict[str, str], port: int, served: str) -> float:
    """Seconds from Popen of the bare vLLM command to its first streamed token."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        first_token(f"http://127.0.0.1:{port}", served, {}, started + 600)
        return time.monotonic() - started
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=60)


def fleet_start(env: dict[str, str], served: str, store: TokenStore, model: str) -> float:
    """Seconds from ``fleet up`` to the first token through the edge (token checked)."""
    key, secret = store.create(f"bench-{time.monotonic_ns()}")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "modelfleet", "up", model], env=env, capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    url = f"http://127.0.0.1:{env['FLEET_LOCAL_BASE_PORT']}"
    try:
        first_token(url, served, {"Modal-Key": key, "Modal-Secret": secret}, started + 600)
        return time.monotonic() - started
    finally:
        subprocess.run([sys.executable, "-m", "modelfleet", "down", model], env=env, capture_output=True, timeout=300)


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
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        state = Path(scratch) / "state"
        (state / "volumes").mkdir(parents=True)
        (state / "volumes" / volume.name).symlink_to(volume, target_is_directory=True)
        store = TokenStore(FleetSettings(state_dir=state).tokens_path)
        for cache in ("empty", "seeded"):
            cache_root = Path(scratch) / "vllm-cache"
            for _ in range(args.repeats):
                if cache == "empty":
                    shutil.rmtree(cache_root, ignore_errors=True)
                port = free_port()
                env = {**os.environ, **vllm_env(model.spec, platform="cpu"), "VLLM_CACHE_ROOT": str(cache_root)}
                command = vllm_command(
                    model.spec,
                    model_path=checkpoint_dir(model, volume),
                    served_name=model.served_name,
                    port=port,
                    platform="cpu",
                )
                results.setdefault(f"bare, {cache} cache", []).append(bare_start(command, env, port, model.served_name))
                if cache == "empty":
                    shutil.rmtree(cache_root, ignore_errors=True)
                fleet_env = {**env, "FLEET_STATE_DIR": str(state), "FLEET_LOCAL_BASE_PORT": str(free_port())}
                results.setdefault(f"fleet up, {cache} cache", []).append(
                    fleet_start(fleet_env, model.served_name, store, args.model)
                )
                print({k: [round(x, 1) for x in v] for k, v in results.items()}, flush=True)
    summaries = {k: summary(v) for k, v in results.items()}
    ratios = {
        cache: summaries[f"fleet up, {cache} cache"]["median"] / summaries[f"bare, {cache} cache"]["median"]
        for cache in ("empty", "seeded")
    }
    data = {
        "model": args.model,
        "repeats": args.repeats,
        "seconds_to_first_token": summaries,
        "ratio_fleet_over_bare": ratios,
        "goal_ratio_at_most": 1.10,
        "goal_met": all(r <= 1.10 for r in ratios.values()),
        "command": "bare: the platform's vllm_command() run directly; fleet: `fleet up MODEL`; both until the first streamed token",
    }
    bars = {k: (s["median"], s["min"], s["max"]) for k, s in summaries.items()}
    path = save(
        "local-cold-start", data, bars, ylabel="seconds to first token", title=f"local cold start, {args.model} on CPU"
    )
    print(f"ratios fleet/bare: {', '.join(f'{k} cache {v:.3f}' for k, v in ratios.items())} (goal <= 1.10) -> {path}")


if __name__ == "__main__":
    main()
