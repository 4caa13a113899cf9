"""The Modal container rehearsed on CUDA vLLM, then throughput three ways: direct, edge process, Modal relay.

Runs on the GPU device machine (``bench/gpu/device.sh`` gets vLLM there; ``RUNNER=bench.gpu.servers``).

1. **Rehearsal with the hook bodies themselves.** ``ServingRuntime.prepare_snapshot()`` (the
   ``enter(snap=True)`` hook: start vLLM with sleep mode, wait for /health, warm up, sleep at
   level 1), the snapshot point, then ``ServingRuntime.start()`` (the ``enter(snap=False)``
   hook: wake). The only addition is a probe the engine runs just before the hook's own
   ``sleep``: greedy answers to fixed prompts (twice, to show they are deterministic). The
   same answers are taken after the wake and after a second sleep/wake cycle, and compared
   token for token (ids, with log-probabilities), see ``greedy.py``.
2. **Throughput at concurrency 64** with ``vllm bench serve`` (the load of runs 1-3: 512 in /
   128 out, 256 requests, 8 warm-ups, prefix cache reset before each run, one seed per
   round), rounds in alternating order over three paths: vLLM directly; the edge as its own
   process (``python -m modelfleet.runtime.edge_main`` under the runtime's guardian, as the
   container will run it); and Modal's ``web_server_proxy`` relay (``modal_relay.py``, its own
   process) in front of that edge. The load generator runs in this process, imported once.

The results file is rewritten after every step, so a run cut short still returns what it measured.
Usage (on the device): ``python3 -m bench.gpu.servers --model /tmp/model --out /tmp/gpures``
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.gpu import greedy, probes
from bench.gpu.lifecycle import SERVED_NAME, build_spec
from bench.gpu.server_procs import ServerProcess, cpu_seconds, run_load_in_process
from bench.gpu.throughput import Load, bench_command, ratio, run_bench
from modelfleet.runtime.engine import Engine
from modelfleet.runtime.engine_client import EngineClient
from modelfleet.runtime.guardian import GUARDIAN
from modelfleet.targets.modal.bundle import ModelBundle, MountedVolume
from modelfleet.targets.modal.serving import EDGE_PORT, ServingRuntime

RELAY_PORT = 8002
TASK_ID_ENV = "MODAL_TASK_ID"  # as serving.py reads it: a restored container has a new task id
PATHS = ("direct", "edge", "relay")


@dataclass(frozen=True)
class ProbedClient(EngineClient):
    """The runtime's control client, unchanged, with a probe run just before the first ``sleep`` and timings kept."""

    record: dict[str, Any] = field(default_factory=dict)

    def sleep(self, level: int = 1) -> float:
        if "gpu_awake" not in self.record:  # the first sleep: the hook's, before the snapshot point
            self.record["gpu_awake"] = probes.gpu_memory()
            self.record["before_a"] = greedy.greedy_answers(self.url, self.served_name, engine_url=self.url)
            self.record["before_b"] = greedy.greedy_answers(self.url, self.served_name, engine_url=self.url)
            # The same prompts again with their prefixes cached (no reset): the run-1 "difference".
            self.record["before_cached"] = greedy.greedy_answers(self.url, self.served_name)
        seconds = super().sleep(level)
        self.record.setdefault("sleep_s", []).append(round(seconds, 3))
        return seconds

    def wake(self) -> float:
        seconds = super().wake()
        self.record.setdefault("wake_s", []).append(round(seconds, 3))
        return seconds


class ProbedEngine(Engine):
    """The runtime's engine, unchanged, with ``ProbedClient`` for its control calls."""

    def __init__(self, engine: Engine, record: dict[str, Any], *, dry_run: bool = False) -> None:
        command = engine.command
        if dry_run:  # the same argv, served by dryrun_vllm.py (no GPU): checks the plumbing only
            command = [sys.executable, "-m", "bench.gpu.dryrun_vllm", *command[command.index("--model") :]]
        super().__init__(command, env=engine.env, port=engine.port, log_path=engine.log_path)
        client = engine.client
        self.client = ProbedClient(client.url, client.served_name, client.sleep_mode, record=record)


class ProbedRuntime(ServingRuntime):
    """``ServingRuntime`` whose engine is built by the runtime itself, then wrapped by ``ProbedEngine``."""

    def __init__(self, bundle: ModelBundle, record: dict[str, Any], *, dry_run: bool = False) -> None:
        super().__init__(bundle)
        self.record = record
        self.dry_run = dry_run

    def _new_engine(self, *args: Any, **kwargs: Any) -> Engine:
        return ProbedEngine(super()._new_engine(*args, **kwargs), self.record, dry_run=self.dry_run)


class Run:
    """One run's results under ``out``/gpu-servers.json, saved after every step."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out: Path = args.out
        self.logs = self.out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self.results: dict[str, Any] = {"runner_command": [sys.executable, "-m", "bench.gpu.servers", *sys.argv[1:]]}
        self.load = Load(requests=args.requests)
        self.processes: list[ServerProcess] = []

    def say(self, *parts: object) -> None:
        print(f"[{time.monotonic() - self.started:7.1f}]", *parts, flush=True)

    def save(self) -> None:
        import json

        self.results["runner_elapsed_s"] = round(time.monotonic() - self.started, 1)
        tmp = self.out / ".gpu-servers.json.tmp"
        tmp.write_text(json.dumps(self.results, indent=1, default=str))
        tmp.replace(self.out / "gpu-servers.json")

    def bundle(self) -> ModelBundle:
        """The bundle a deploy would bake into the image for this checkpoint (volumes named, not mounted)."""
        spec = build_spec(self.args.model, Path("/tmp/vllm-cache-root"), self.args.max_model_len)
        return ModelBundle(
            model="bench-llama-7b",
            app_name="fleet-bench-llama-7b",
            served_name=SERVED_NAME,
            spec_hash="bench",
            spec=spec,
            weights=MountedVolume(name="fleet-weights", mount_path="/weights"),
            compile_cache=MountedVolume(name="fleet-compile-cache", mount_path="/tmp/vllm-cache-root"),
            checkpoint=str(self.args.model),
        )

    # -- 1. the rehearsal -------------------------------------------------------------------

    def rehearse(self) -> Engine:
        """The two enter hooks with the snapshot point between them; greedy answers compared."""
        import vllm

        record: dict[str, Any] = {}
        self.results["environment"] = {
            "vllm": vllm.__version__,
            "torch": importlib.metadata.version("torch"),
            "modal": importlib.metadata.version("modal"),
            "dry_run": self.args.dry_run,
            "python": sys.version.split()[0],
            "gpu": probes.gpu_info(),
            "gpu_idle": probes.gpu_memory(),
            "model": _read(self.args.model / "DONE"),
        }
        self.results["rehearsal"] = record
        bundle = self.bundle()
        record["spec"] = bundle.spec.model_dump(mode="json")
        runtime = ProbedRuntime(bundle, record, dry_run=self.args.dry_run)
        record["page_cache_dropped"] = "dry run" if self.args.dry_run else probes.drop_page_cache()
        os.environ[TASK_ID_ENV] = "ta-bench-snapshot"
        self.say("enter(snap=True): ServingRuntime.prepare_snapshot()")
        started = time.monotonic()
        runtime.prepare_snapshot()
        record["prepare_snapshot_s"] = round(time.monotonic() - started, 2)
        engine = runtime.engine
        assert engine is not None
        record["vllm_command"] = engine.command
        record["vllm_env"] = engine.env
        record["is_sleeping_at_snapshot_point"] = engine.client.is_sleeping()
        record["gpu_asleep"] = probes.gpu_memory()
        self.say(
            f"snapshot point: asleep, GPU {record['gpu_asleep'].get('used_gb')} GB; prepare took "
            f"{record['prepare_snapshot_s']} s"
        )
        self.save()
        os.environ[TASK_ID_ENV] = "ta-bench-restored"
        self.say("enter(snap=False): ServingRuntime.start()")
        started = time.monotonic()
        runtime.start()
        record["start_hook_s"] = round(time.monotonic() - started, 3)
        record["boot_record"] = runtime.boot
        record["is_sleeping_after_start"] = engine.client.is_sleeping()
        record["gpu_after_wake"] = probes.gpu_memory()
        record["first_chat_after_wake"] = probes.timed_chat(engine.url, SERVED_NAME, "Hello")
        after = greedy.greedy_answers(engine.url, SERVED_NAME, engine_url=engine.url)
        # A second cycle as the engine sees it again later (the first sleep pins its host buffer once).
        engine.client.sleep(bundle.spec.snapshot.sleep_level)
        record["gpu_asleep_cycle2"] = probes.gpu_memory()
        engine.client.wake()
        after2 = greedy.greedy_answers(engine.url, SERVED_NAME, engine_url=engine.url)
        before = record.pop("before_a")
        before_b, cached = record.pop("before_b"), record.pop("before_cached")
        record["determinism_before_sleep"] = greedy.compare(before, before_b)
        # Not part of the verdict: shows how much the prefix-cache path alone moves greedy answers.
        record["prefix_cached_vs_full_prefill"] = greedy.compare(before, cached)
        record["after_wake_vs_before"] = greedy.compare(before, after)
        record["after_second_wake_vs_before"] = greedy.compare(before, after2)
        record["fingerprints"] = {
            "before": greedy.fingerprint(before),
            "before_again": greedy.fingerprint(before_b),
            "before_prefix_cached": greedy.fingerprint(cached),
            "after_wake": greedy.fingerprint(after),
            "after_second_wake": greedy.fingerprint(after2),
        }
        record["vllm_log"] = probes.parse_log(engine.log_path.read_text(errors="replace"))
        record["verdict_token_for_token"] = all(
            record[k]["all_identical"]
            for k in ("determinism_before_sleep", "after_wake_vs_before", "after_second_wake_vs_before")
        )
        self.say(
            "token-for-token identical before sleep and after wake:",
            record["verdict_token_for_token"],
            "sleep",
            record.get("sleep_s"),
            "wake",
            record.get("wake_s"),
        )
        self.results["greedy_before"] = before  # kept in memory for the relay checks; dropped before saving
        self.save_without("greedy_before")
        return engine

    def save_without(self, key: str) -> None:
        value = self.results.pop(key, None)
        self.save()
        if value is not None:
            self.results[key] = value

    # -- 2. the servers in front ------------------------------------------------------------

    def start_fronts(self, engine: Engine) -> dict[str, str]:
        """The edge process (under the guardian) and Modal's relay process; their URLs by path name."""
        timeout = str(self.bundle().spec.scaling.timeout)
        edge_argv = [
            sys.executable,
            str(GUARDIAN),
            "10",
            "--",
            sys.executable,
            "-m",
            "modelfleet.runtime.edge_main",
            "--upstream",
            engine.url,
            "--host",
            "0.0.0.0",
            "--port",
            str(EDGE_PORT),
            "--auth",
            "modal-proxy",
            "--timeout",
            timeout,
        ]
        edge = ServerProcess("edge", edge_argv, self.logs / "edge.log", EDGE_PORT)
        self.processes.append(edge)
        relay_argv = [
            sys.executable,
            "-m",
            "bench.gpu.modal_relay",
            "--upstream-port",
            str(EDGE_PORT),
            "--port",
            str(RELAY_PORT),
        ]
        relay = ServerProcess("relay", relay_argv, self.logs / "relay.log", RELAY_PORT)
        self.processes.append(relay)
        fronts: dict[str, Any] = {}
        for process in (edge, relay):
            fronts[process.name] = {"argv": process.argv, "ready_s": round(process.start(), 2)}
        self.results["fronts"] = fronts
        urls = {"direct": engine.url, "edge": edge.url, "relay": relay.url}
        before = self.results["greedy_before"]
        checks: dict[str, Any] = {}
        for name in ("edge", "relay"):
            # Both relays must pass the stream through unchanged: the same greedy ids as direct.
            through = greedy.greedy_answers(urls[name], SERVED_NAME, engine_url=engine.url)
            checks[name] = greedy.compare(before, through)
            checks[name]["fingerprint"] = greedy.fingerprint(through)
            checks[name]["private_route_status"] = _status(urls[name] + "/sleep?level=1", "POST")
        fronts["greedy_through_vs_direct"] = checks
        self.say("fronts up:", {k: v["ready_s"] for k, v in fronts.items() if isinstance(v, dict) and "ready_s" in v})
        self.save_without("greedy_before")
        return urls

    # -- 3. throughput ----------------------------------------------------------------------

    def measure(self, engine: Engine, urls: dict[str, str]) -> None:
        """A discarded warm-up per path, then rounds in alternating order until --rounds or the time budget."""
        record: dict[str, Any] = {"load": self.load.__dict__, "rounds": [], "warmup": {}}
        self.results["throughput"] = record
        pids = {p.name: p.serving_pid() for p in self.processes}
        record["front_pids_found"] = {k: v is not None for k, v in pids.items()}
        warm = Load(requests=64, warmups=self.load.warmups)
        for path in PATHS:
            record["warmup"][path] = self.one(engine, urls[path], path, warm, seed=0, tag=f"warmup-{path}", pids=pids)
        for index in range(1, self.args.rounds + 1):
            elapsed = time.monotonic() - self.started
            if index > self.args.min_rounds and elapsed > self.args.budget_s:
                self.say(f"round {index} not started: {elapsed:.0f} s > budget {self.args.budget_s} s")
                break
            order = PATHS if index % 2 else PATHS[::-1]
            this: dict[str, Any] = {"order": list(order)}
            record["rounds"].append(this)
            for path in order:
                this[path] = self.one(engine, urls[path], path, self.load, seed=index, tag=f"{path}-{index}", pids=pids)
                self.summarise()
                self.save_without("greedy_before")

    def one(
        self, engine: Engine, url: str, path: str, load: Load, *, seed: int, tag: str, pids: dict[str, int | None]
    ) -> dict[str, Any]:
        """One ``vllm bench serve`` run after a prefix-cache reset, with the fronts' CPU seconds."""
        reset = _status(f"{engine.url}/reset_prefix_cache", "POST")
        cpu_before = {k: cpu_seconds(v) for k, v in pids.items()}
        argv = bench_command(
            url, SERVED_NAME, str(self.args.model), load, self.out / "unused.json", edge=path != "direct", seed=seed
        )
        try:
            result = run_load_in_process(argv, self.logs / f"bench-{tag}.log")
        except Exception:  # the subprocess form of the same command, as runs 1-3 ran it
            result = {"in_process_error": traceback.format_exc(limit=2)}
            result.update(
                run_bench(
                    url,
                    SERVED_NAME,
                    str(self.args.model),
                    load,
                    self.out / f"bench-{tag}.json",
                    self.logs / f"bench-{tag}.log",
                    edge=path != "direct",
                    seed=seed,
                )
            )
        cpu_after = {k: cpu_seconds(v) for k, v in pids.items()}
        used: dict[str, float] = {}
        for name in pids:
            start, end = cpu_before.get(name), cpu_after.get(name)
            if start is not None and end is not None:
                used[name] = round(end - start, 2)
        result["front_cpu_s"] = used
        result["prefix_cache_reset_status"] = reset
        self.say(
            f"{tag}: {_fmt(result.get('output_throughput'))} tok/s, TTFT median "
            f"{_fmt(result.get('median_ttft_ms'))} ms, TPOT median {_fmt(result.get('median_tpot_ms'))} ms, "
            f"front CPU {result['front_cpu_s']}"
        )
        return result

    def summarise(self) -> None:
        """Medians per path, and edge/direct, relay/direct, relay/edge over rounds and per round."""
        rounds = self.results["throughput"]["rounds"]
        by_path = {p: [r[p] for r in rounds if p in r] for p in PATHS}
        summary: dict[str, Any] = {}
        for key in ("output_throughput", "median_ttft_ms", "p99_ttft_ms", "median_tpot_ms", "median_itl_ms"):
            summary[key] = {p: [_round(r.get(key)) for r in by_path[p]] for p in PATHS}
        for top, bottom in (("edge", "direct"), ("relay", "direct"), ("relay", "edge")):
            name = f"{top}_over_{bottom}"
            summary[name] = ratio(by_path[top], by_path[bottom])
            summary[f"{name}_per_round"] = [ratio([r[top]], [r[bottom]]) for r in rounds if top in r and bottom in r]
        if summary["edge_over_direct"] is not None:
            summary["edge_goal_met"] = summary["edge_over_direct"] >= 0.97
        self.results["throughput"]["summary"] = summary

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def _status(url: str, method: str = "GET") -> int:
    with httpx.Client(timeout=30.0) as client:
        return client.request(method, url).status_code


def _round(value: Any) -> Any:
    return round(float(value), 2) if isinstance(value, (int, float)) else value


def _fmt(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else str(value)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--min-rounds", type=int, default=4)
    parser.add_argument("--budget-s", type=float, default=480.0, help="start no round after this (beyond min)")
    parser.add_argument("--dry-run", action="store_true", help="against dryrun_vllm.py, to check the plumbing")
    args = parser.parse_args()
    run = Run(args)
    engine: Engine | None = None
    try:
        engine = run.rehearse()
        urls = run.start_fronts(engine)
        run.measure(engine, urls)
        run.results["done"] = True
    except Exception:
        run.results.setdefault("errors", []).append(traceback.format_exc())
        if engine is not None:
            run.results["vllm_log_tail"] = engine.log_tail(60)
        run.say("FAILED\n" + traceback.format_exc())
    finally:
        run.stop()
        if engine is not None:
            engine.stop()
        run.results.pop("greedy_before", None)
        run.save()
        run.say("ALL DONE")
    return 0 if run.results.get("done") else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
