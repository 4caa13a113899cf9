"""The snapshot lifecycle and the edge, measured on CUDA vLLM with the project's own runtime code.

Runs on the GPU device machine (``bench/gpu/device.sh`` gets vLLM there). Every step is
the runtime's: ``vllm_command``/``vllm_env`` build the argv and environment from a
``ModelSpec``, ``Engine`` starts and waits for vLLM and its ``client`` warms up, sleeps and
wakes it exactly as the Modal snapshot hooks do, and ``edge_server`` in modal-proxy mode
fronts it. Phases:

1. cold boot, empty VLLM_CACHE_ROOT: seconds to /health 200; stop;
2. boot again with the cache warm; keep it;
3. warm-up, sleep (level 1) and wake, twice: seconds, GPU memory awake vs asleep,
   the first token after each wake (directly, then through the edge);
4. throughput at concurrency 64, directly and through the edge, alternating.

The results file is rewritten after every phase, so a run cut off by the device's time
limit still returns what it measured. Usage (on the device):
``python3 -m bench.gpu.lifecycle --model /tmp/model --out /tmp/gpures``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.gpu import probes
from bench.gpu.edge_thread import EdgeThread, edge_config
from bench.gpu.throughput import Load, ratio, run_bench
from modelfleet.runtime import engine as engine_module
from modelfleet.runtime.command import vllm_command, vllm_env
from modelfleet.runtime.edge import EdgeGate
from modelfleet.runtime.engine import Engine
from modelfleet.spec.model import ModelSpec

VLLM_PORT = 8001  # as in targets/modal/serving.py: vLLM on loopback, the edge in front
EDGE_PORT = 8000
SERVED_NAME = "bench-llama-7b"
BOOT_TIMEOUT = 900.0
PROMPTS = ("Hello! Who are you?", "Write a haiku about GPUs.", "List three prime numbers.")
EDGE_PRIVATE_PROBES = (
    ("POST", "/sleep?level=1"),
    ("POST", "/wake_up"),
    ("POST", "/collective_rpc"),
    ("GET", "/server_info"),
    ("GET", "/is_sleeping"),
    ("POST", "/reset_prefix_cache"),
)


def build_spec(model_dir: Path, cache_root: Path, max_model_len: int) -> ModelSpec:
    """The model declaration a user would write for this checkpoint on an H200, snapshots on."""
    return ModelSpec.model_validate(
        {
            "description": "Benchmark: random-weight Llama 7.24B (bf16) on one H200",
            "weights": {
                "source": "local",
                "path": str(model_dir),
                "served_model_name": SERVED_NAME,
                "params_billion": 7.24,
                "dtype": "bfloat16",
                "architecture": {"num_hidden_layers": 32, "num_key_value_heads": 8, "head_dim": 128},
            },
            "gpu": {"type": "H200", "count": 1},
            "vllm": {"max_model_len": max_model_len},
            "snapshot": {"enabled": True, "gpu_snapshot": True, "warmup_requests": 3, "sleep_level": 1},
            # The Modal image sets VLLM_CACHE_ROOT to the compile-cache volume; flashinfer is not
            # carried to the device, and without this vLLM's sampler imports it and dies.
            "image": {"env": {"VLLM_CACHE_ROOT": str(cache_root), "VLLM_USE_FLASHINFER_SAMPLER": "0"}},
        }
    )


class Run:
    """One run's results, saved after every phase under ``out``."""

    def __init__(self, out: Path, model_dir: Path, max_model_len: int, load: Load, *, dry_run: bool = False) -> None:
        self.out = out
        # --dry-run: the plumbing against dryrun_vllm.py on a machine without a GPU (no figures).
        self.dry_run = dry_run
        self.entry = [sys.executable, "-m", "bench.gpu.dryrun_vllm"] if dry_run else None
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.model_dir = model_dir
        self.cache_root = out / "vllm-cache-root" if dry_run else Path("/tmp/vllm-cache-root")
        self.spec = build_spec(model_dir, self.cache_root, max_model_len)
        self.load = load
        self.started = time.monotonic()
        self.lifecycle: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds")}
        self.throughput: dict[str, Any] = {}
        self.engine: Engine | None = None
        self.edge: EdgeThread | None = None
        self.gate = EdgeGate()

    def say(self, *parts: object) -> None:
        """A progress line with seconds since the run started."""
        print(f"[{time.monotonic() - self.started:7.1f}]", *parts, flush=True)

    def save(self) -> None:
        """Rewrite both results files atomically."""
        self.lifecycle["runner_elapsed_s"] = round(time.monotonic() - self.started, 1)
        for name, data in (("gpu-lifecycle.json", self.lifecycle), ("gpu-throughput.json", self.throughput)):
            tmp = self.out / f".{name}.tmp"
            tmp.write_text(json.dumps(data, indent=1, default=str))
            tmp.replace(self.out / name)

    def new_engine(self, name: str) -> Engine:
        """An Engine built the way targets/modal/serving.py builds it, logging to logs/<name>.log."""
        command = vllm_command(
            self.spec,
            model_path=self.model_dir,
            served_name=SERVED_NAME,
            port=VLLM_PORT,
            platform="gpu",
            entry=self.entry,
        )
        env = vllm_env(self.spec, platform="gpu")
        return Engine(command, env=env, port=VLLM_PORT, log_path=self.logs / f"{name}.log")

    # -- phases ---------------------------------------------------------------------------

    def describe(self) -> None:
        """Versions, GPU, the spec, the exact vLLM command, and which runtime code ran."""
        import torch
        import vllm

        engine = self.new_engine("describe")
        runtime_dir = Path(engine_module.__file__).parent
        self.lifecycle["environment"] = {
            "vllm": vllm.__version__,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "gpu": probes.gpu_info(),
            "gpu_idle": probes.gpu_memory(),
            "model_dir": str(self.model_dir),
            "model": _read_json(self.model_dir / "DONE"),
            "runtime_sha256": {p.name: _sha256(p) for p in sorted(runtime_dir.glob("*.py"))},
            "runtime_path": str(runtime_dir),
        }
        self.lifecycle["spec"] = self.spec.model_dump(mode="json")
        self.lifecycle["vllm_command"] = engine.command
        self.lifecycle["vllm_env"] = engine.env
        self.lifecycle["runner_command"] = [sys.executable, "-m", "bench.gpu.lifecycle", *sys.argv[1:]]
        self.save()

    def boot(self, name: str, *, empty_cache: bool) -> Engine:
        """Start vLLM through the runtime's Engine from a dropped page cache; seconds to /health 200."""
        if empty_cache:
            shutil.rmtree(self.cache_root, ignore_errors=True)
        record: dict[str, Any] = {
            "cache_root_empty": not self.cache_root.exists() or not any(self.cache_root.iterdir()),
            "page_cache_dropped": "dry run" if self.dry_run else probes.drop_page_cache(),
            "gpu_before": probes.gpu_memory(),
        }
        self.lifecycle[name] = record
        engine = self.new_engine(name)
        self.say(f"boot {name}: starting {' '.join(engine.command)}")
        started = time.monotonic()
        engine.start()
        try:
            record["healthy_s"] = round(engine.wait_healthy(BOOT_TIMEOUT), 2)
        except Exception:
            record["error"] = traceback.format_exc(limit=3)
            record["log_errors"] = probes.error_lines(engine.log_path.read_text(errors="replace"))
            engine.stop()
            self.save()
            raise
        record["healthy_wall_s"] = round(time.monotonic() - started, 2)
        record["gpu_serving"] = probes.gpu_memory()
        record["vllm_log"] = probes.parse_log(engine.log_path.read_text(errors="replace"))
        self.say(f"boot {name}: healthy after {record['healthy_s']} s")
        self.save()
        return engine

    def stop_engine(self, engine: Engine, name: str) -> None:
        """Stop through the runtime (SIGTERM to vLLM's group) and wait for the GPU to empty."""
        started = time.monotonic()
        code = engine.stop()
        self.lifecycle[name]["stop_s"] = round(time.monotonic() - started, 2)
        self.lifecycle[name]["exit_code"] = code
        self.lifecycle[name]["gpu_after_stop"] = probes.wait_gpu_free()
        self.save()

    def snapshot_cycle(self, engine: Engine) -> None:
        """What the snapshot hooks do (warm up, sleep; later wake), twice, with the edge in front."""
        record: dict[str, Any] = {}
        self.lifecycle["snapshot"] = record
        record["warm_up_s"] = round(engine.client.warm_up(self.spec.snapshot.warmup_requests), 3)
        record["ttft_warm_direct"] = [probes.timed_chat(engine.url, SERVED_NAME, p) for p in PROMPTS]
        self.edge = EdgeThread(edge_config(engine.url, self.gate, {"model": SERVED_NAME, "boot": "bench"}), EDGE_PORT)
        record["edge_start_s"] = round(self.edge.start(), 3)
        record["ttft_warm_edge"] = [probes.timed_chat(self.edge.url, SERVED_NAME, p) for p in PROMPTS]
        record["edge_routes"] = {
            f"{method} {path}": probes.status_of(self.edge.url + path, method) for method, path in EDGE_PRIVATE_PROBES
        }
        record["edge_routes"]["GET /v1/models"] = probes.status_of(self.edge.url + "/v1/models")
        record["edge_routes"]["GET /health"] = probes.status_of(self.edge.url + "/health")
        record["gpu_awake"] = probes.gpu_memory()
        self.save()
        cycles: list[dict[str, Any]] = []
        record["cycles"] = cycles
        for index, via_edge in enumerate((False, True), start=1):
            cycle: dict[str, Any] = {"first_request_via": "edge" if via_edge else "direct"}
            cycles.append(cycle)
            self.gate.mark("asleep")
            cycle["sleep_s"] = round(engine.client.sleep(self.spec.snapshot.sleep_level), 3)
            cycle["is_sleeping"] = engine.client.is_sleeping()
            cycle["gpu_asleep"] = probes.gpu_memory()
            cycle["edge_while_asleep"] = probes.timed_chat(self.edge.url, SERVED_NAME, PROMPTS[0])
            self.say(f"cycle {index}: slept in {cycle['sleep_s']} s, GPU {cycle['gpu_asleep'].get('used_gb')} GB")
            cycle["wake_s"] = round(engine.client.wake(), 3)
            self.gate.mark("ready")
            cycle["is_sleeping_after_wake"] = engine.client.is_sleeping()
            first_url = self.edge.url if via_edge else engine.url
            cycle["first_request"] = probes.timed_chat(first_url, SERVED_NAME, PROMPTS[1])
            cycle["next_requests"] = [probes.timed_chat(first_url, SERVED_NAME, p) for p in PROMPTS]
            cycle["gpu_after_wake"] = probes.gpu_memory()
            ttft = cycle["first_request"].get("ttft_ms")
            cycle["wake_to_first_token_s"] = round(cycle["wake_s"] + (ttft or 0) / 1000, 3) if ttft else None
            self.say(f"cycle {index}: woke in {cycle['wake_s']} s, first token {ttft} ms")
            self.save()
        self.summarise_lifecycle()
        self.save()

    def summarise_lifecycle(self) -> None:
        """The headline figures, next to the goal (wake <= 5 % of the cold boot)."""
        cold = self.lifecycle.get("cold", {}).get("healthy_s")
        warm = self.lifecycle.get("warm", {}).get("healthy_s")
        cycles = self.lifecycle.get("snapshot", {}).get("cycles", [])
        wakes = [c["wake_s"] for c in cycles if "wake_s" in c]
        summary: dict[str, Any] = {"cold_boot_s": cold, "warm_cache_boot_s": warm}
        summary["sleep_s"] = [c.get("sleep_s") for c in cycles]
        summary["wake_s"] = wakes
        if cycles:
            summary["gpu_awake_gb"] = self.lifecycle["snapshot"]["gpu_awake"].get("used_gb")
            summary["gpu_asleep_gb"] = cycles[0].get("gpu_asleep", {}).get("used_gb")
            summary["first_token_after_wake_ms"] = [c.get("first_request", {}).get("ttft_ms") for c in cycles]
        if cold and wakes:
            summary["wake_pct_of_cold_boot"] = round(100 * max(wakes) / cold, 3)
            summary["wake_goal_met"] = summary["wake_pct_of_cold_boot"] <= 5.0
        self.lifecycle["summary"] = summary

    def measure_throughput(self, engine: Engine, rounds: int) -> None:
        """Direct and through the edge, alternating, so drift over the run hits both sides alike."""
        assert self.edge is not None
        self.throughput.update(
            {
                "load": self.load.__dict__,
                "vllm_command": engine.command,
                "edge": "runtime.edge.edge_server, modal-proxy mode, in a thread of the runner",
                "environment": self.lifecycle.get("environment"),
                "direct": [],
                "edge_runs": [],
            }
        )
        # Every run starts from an empty prefix cache: vLLM caches prefixes by default, and a run
        # that repeats earlier prompts would skip their prefill. Both sides of a round send the
        # same prompts (one seed per round); the order alternates so neither side always goes first.
        for index in range(1, rounds + 1):
            sides = [("direct", engine.url), ("edge_runs", self.edge.url)]
            for side, url in sides if index % 2 else sides[::-1]:
                tag = f"{side.split('_')[0]}-{index}"
                reset = probes.status_of(f"{engine.url}/reset_prefix_cache", "POST")
                self.say(f"throughput {tag}: {url} (prefix cache reset: HTTP {reset})")
                result = run_bench(
                    url,
                    SERVED_NAME,
                    str(self.model_dir),
                    self.load,
                    self.out / f"bench-{tag}.json",
                    self.logs / f"bench-{tag}.log",
                    edge=side == "edge_runs",
                    seed=index,
                )
                result["prefix_cache_reset_status"] = reset
                self.throughput[side].append(result)
                self.say(
                    f"throughput {tag}: {result.get('output_throughput')} tok/s, "
                    f"TTFT median {result.get('median_ttft_ms')} ms ({result['tool']})"
                )
                self.summarise_throughput()
                self.save()

    def summarise_throughput(self) -> None:
        """Edge/direct ratio of output tokens per second, and medians per side (goal >= 0.97)."""
        direct, edge = self.throughput["direct"], self.throughput["edge_runs"]
        summary: dict[str, Any] = {"ratio_output_throughput": ratio(edge, direct)}
        summary["ratio_per_round"] = [ratio([e], [d]) for e, d in zip(edge, direct, strict=False)]
        for key in ("output_throughput", "request_throughput", "median_ttft_ms", "median_tpot_ms", "p99_ttft_ms"):
            summary[f"direct_{key}"] = [r.get(key) for r in direct]
            summary[f"edge_{key}"] = [r.get(key) for r in edge]
        if summary["ratio_output_throughput"] is not None:
            summary["ratio_goal_met"] = summary["ratio_output_throughput"] >= 0.97
        self.throughput["summary"] = summary


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def main() -> int:
    """Run the phases in order; a failed boot ends the run, everything measured so far is saved."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--phases", default="cold,warm,snapshot,throughput", help="a subset, in this order")
    parser.add_argument("--dry-run", action="store_true", help="against dryrun_vllm.py, to check the plumbing")
    args = parser.parse_args()
    load = Load(requests=args.requests)
    run = Run(args.out, args.model, args.max_model_len, load, dry_run=args.dry_run)
    engine: Engine | None = None
    try:
        phases = args.phases.split(",")
        run.lifecycle["phases"] = phases
        run.describe()
        if "cold" in phases:
            engine = run.boot("cold", empty_cache=True)
            run.stop_engine(engine, "cold")
        # "warm" is the boot that serves the rest; without "cold" before it, its cache is what it is.
        engine = run.boot("warm", empty_cache=False)
        if "snapshot" in phases or "throughput" in phases:
            run.snapshot_cycle(engine)  # the edge starts here, and throughput wants a woken engine
        if "throughput" in phases:
            run.measure_throughput(engine, args.rounds)
        run.lifecycle["done"] = True
    except Exception:
        run.lifecycle.setdefault("errors", []).append(traceback.format_exc())
        if engine is not None:
            run.lifecycle["vllm_log_tail"] = engine.log_tail(60)
        run.say("FAILED\n" + traceback.format_exc())
    finally:
        if run.edge is not None:
            run.edge.stop()
        if engine is not None:
            engine.stop()
        run.save()
        run.say("ALL DONE")
    return 0 if run.lifecycle.get("done") else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
