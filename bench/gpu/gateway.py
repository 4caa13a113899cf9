"""Gateway overhead on the H200: the model's edge measured directly and through the gateway, one run.

Runs on the GPU device machine (``bench/gpu/device.sh``, ``RUNNER=bench.gpu.gateway``). The CPU
version is ``bench/gateway_overhead.py``; this one uses the method of ``bench/gpu/servers.py``:

- vLLM 0.25.0 on the random 7.24B Llama, started by the runtime's ``Engine`` from the same
  ``ModelSpec`` as the earlier GPU runs (``lifecycle.build_spec``: sleep mode on, CUDA graphs);
- the edge as its own process under the guardian (``modelfleet.runtime.edge_main --auth
  modal-proxy``), as the Modal container runs it: **direct** is this edge;
- the gateway as its own process in front of that edge (``bench.gpu.gateway_serve``: client key
  from a ``LocalKeyStore`` in /tmp, no quotas that bite, the SQLite ledger in /tmp, the proxy
  token sent as Modal-Key/Modal-Secret): **gateway**.

Load: ``vllm bench serve`` (in this process, imported once; 512 in / 128 out, random prompts,
ignore-eos) at concurrency 1, 16 and 64, the same number of prompts on both sides, a prompt
seed of its own for every run (with one seed, the side that goes second finds its prompts in
vLLM's prefix cache and wins by that alone), vLLM's prefix cache reset before each run, sides
alternating which goes first. One unmeasured warm-up per side and concurrency first (the
gateway's first request pays the key's scrypt check). Per concurrency: output-token
throughput gateway/direct (median over pairs) and the added median TTFT (ms).

The results file is rewritten after every run. Usage (on the device):
``python3 -m bench.gpu.gateway --model /tmp/model --out /tmp/gpures``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import httpx

from bench.gpu import interleaved, probes
from bench.gpu.lifecycle import SERVED_NAME, VLLM_PORT, build_spec
from bench.gpu.server_procs import ServerProcess, cpu_seconds, run_load_in_process
from bench.gpu.throughput import PROXY_HEADERS, Load, bench_command
from modelfleet.gateway.key_stores import LocalKeyStore
from modelfleet.gateway.keys import KeyLimits, new_key
from modelfleet.runtime.command import vllm_command, vllm_env
from modelfleet.runtime.engine import Engine
from modelfleet.runtime.guardian import GUARDIAN

EDGE_PORT = 8000
GATEWAY_PORT = 8003
EDGE_HOP_PORT = 8004
RESULT = "gpu-gateway.json"
GOAL_RATIO = 0.97
GOAL_ADDED_TTFT_MS = 2.0
SIDES = ("direct", "gateway")
INTERLEAVED_SIDES = ("direct", "edge-hop", "gateway")
REDACTED = "fk-REDACTED"


class Run:
    """One run's results under ``out``/gpu-gateway.json, saved after every step."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out: Path = args.out
        self.logs = self.out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.state = Path("/tmp/gateway-state")
        self.state.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self.results: dict[str, Any] = {"runner_command": [sys.executable, "-m", "bench.gpu.gateway", *sys.argv[1:]]}
        self.processes: list[ServerProcess] = []
        self.key = ""
        self.engine: Engine | None = None

    def say(self, *parts: object) -> None:
        print(f"[{time.monotonic() - self.started:7.1f}]", *parts, flush=True)

    def save(self) -> None:
        self.results["runner_elapsed_s"] = round(time.monotonic() - self.started, 1)
        tmp = self.out / f".{RESULT}.tmp"
        tmp.write_text(json.dumps(self.results, indent=1, default=str))
        tmp.replace(self.out / RESULT)

    # -- the servers ------------------------------------------------------------------------

    def boot(self) -> Engine:
        """vLLM from the runtime's ``vllm_command``/``vllm_env`` for the bench spec; warm-up."""
        import vllm

        spec = build_spec(self.args.model, Path("/tmp/vllm-cache-root"), self.args.max_model_len)
        command = vllm_command(
            spec, model_path=self.args.model, served_name=SERVED_NAME, port=VLLM_PORT, platform="gpu"
        )
        engine = Engine(command, env=vllm_env(spec, platform="gpu"), port=VLLM_PORT, log_path=self.logs / "vllm.log")
        self.engine = engine
        self.results["environment"] = {
            "vllm": vllm.__version__,
            "python": sys.version.split()[0],
            "gpu": probes.gpu_info(),
            "model": _read(self.args.model / "DONE"),
            "vllm_command": command,
        }
        self.say("vLLM starting")
        engine.start()
        self.results["vllm_healthy_s"] = round(engine.wait_healthy(900.0), 1)
        engine.client.warm_up(3)
        self.say(f"vLLM healthy in {self.results['vllm_healthy_s']} s")
        self.save()
        return engine

    def start_fronts(self, engine: Engine) -> dict[str, str]:
        """The edge (guardian, modal-proxy auth) and the gateway in front of it, each its own process."""
        record, key_text = new_key("bench-gpu", KeyLimits())  # no models list, no quotas: none bite
        LocalKeyStore(self.state / "gateway-keys.json").add(record)
        self.key = key_text
        edge_argv = [
            *(sys.executable, str(GUARDIAN), "10", "--", sys.executable, "-m", "modelfleet.runtime.edge_main"),
            *("--upstream", engine.url, "--host", "127.0.0.1", "--port", str(EDGE_PORT)),
            *("--auth", "modal-proxy", "--timeout", "600"),
        ]
        edge = ServerProcess("edge", edge_argv, self.logs / "edge.log", EDGE_PORT)
        gateway_argv = [
            *(sys.executable, "-m", "bench.gpu.gateway_serve", "--upstream", edge.url, "--served", SERVED_NAME),
            *("--state", str(self.state), "--port", str(GATEWAY_PORT)),
        ]
        if self.args.second_hop == "edge":  # control: a plain second edge where the gateway would be
            gateway_argv = [
                *(sys.executable, "-m", "modelfleet.runtime.edge_main", "--upstream", edge.url),
                *("--host", "127.0.0.1", "--port", str(GATEWAY_PORT), "--auth", "public", "--timeout", "600"),
            ]
        self.results["second_hop"] = self.args.second_hop
        gateway = ServerProcess("gateway", gateway_argv, self.logs / "gateway.log", GATEWAY_PORT)
        started = [edge, gateway]
        if self.args.interleaved:  # control for the interleaved load: a plain second edge, as a hop costs
            hop_argv = [
                *(sys.executable, "-m", "modelfleet.runtime.edge_main", "--upstream", edge.url),
                *("--host", "127.0.0.1", "--port", str(EDGE_HOP_PORT), "--auth", "public", "--timeout", "600"),
            ]
            started.append(ServerProcess("edge-hop", hop_argv, self.logs / "edge-hop.log", EDGE_HOP_PORT))
        fronts: dict[str, Any] = {}
        for process in started:
            self.processes.append(process)
            fronts[process.name] = {"argv": process.argv, "ready_s": round(process.start(), 2)}
        # One request each way: both must answer 200 before anything is measured.
        body = {"model": SERVED_NAME, "prompt": "Hello", "max_tokens": 4}
        headers = {"direct": dict(h.split("=", 1) for h in PROXY_HEADERS), "gateway": self._auth()}
        urls = {"direct": edge.url, "gateway": gateway.url}
        if self.args.interleaved:
            urls["edge-hop"] = f"http://127.0.0.1:{EDGE_HOP_PORT}"
            headers["edge-hop"] = headers["direct"]
        with httpx.Client(timeout=60.0) as client:
            for side in urls:
                status = client.post(f"{urls[side]}/v1/completions", json=body, headers=headers[side]).status_code
                fronts[f"{side}_completion_status"] = status
                if status != 200:
                    raise RuntimeError(f"{side}: /v1/completions answered {status}, not 200")
            if self.args.second_hop == "gateway":
                fronts["gateway_without_key_status"] = client.post(
                    f"{gateway.url}/v1/completions", json=body
                ).status_code
        self.results["fronts"] = fronts
        self.say("fronts up:", {k: v for k, v in fronts.items() if not isinstance(v, dict)})
        self.save()
        return urls

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    # -- the load ---------------------------------------------------------------------------

    def measure(self, engine: Engine, urls: dict[str, str]) -> None:
        """Warm-ups, then pairs (direct, gateway) per concurrency, order alternating, until --pairs or budget."""
        record: dict[str, Any] = {"runs": {}, "warmup": {}}
        self.results["load"] = record
        pids = {p.name: p.serving_pid() for p in self.processes}
        seed = 1
        for c in self.args.concurrency:
            for side in SIDES:
                warm = Load(requests=max(4, c), concurrency=c, warmups=0)
                record["warmup"][f"{side} c={c}"] = self.one(
                    engine, urls[side], side, warm, 9000 + c, f"warm-{side}-c{c}", pids
                )
        for pair in range(self.args.pairs):
            elapsed = time.monotonic() - self.started
            if pair > 0 and elapsed > self.args.budget_s:
                self.say(f"pair {pair + 1} not started: {elapsed:.0f} s > budget {self.args.budget_s} s")
                break
            for index, c in enumerate(self.args.concurrency):
                load = Load(requests=max(self.args.min_prompts, 4 * c), concurrency=c, warmups=min(8, max(2, c)))
                order = SIDES if (pair + index) % 2 == 0 else SIDES[::-1]
                for side in order:
                    tag = f"{side}-c{c}-p{pair + 1}"
                    result = self.one(engine, urls[side], side, load, seed, tag, pids)
                    result["seed"], result["order"] = seed, list(order)
                    seed += 1
                    record["runs"].setdefault(f"{side} c={c}", []).append(result)
                    self.summarise()
                    self.save()

    def one(
        self, engine: Engine, url: str, side: str, load: Load, seed: int, tag: str, pids: dict[str, int | None]
    ) -> dict[str, Any]:
        """One ``vllm bench serve`` run after a prefix-cache reset, with the fronts' CPU seconds."""
        with httpx.Client(timeout=30.0) as client:
            reset = client.post(f"{engine.url}/reset_prefix_cache").status_code
        argv = bench_command(
            url, SERVED_NAME, str(self.args.model), load, self.out / "unused.json", edge=side == "direct", seed=seed
        )
        if side == "gateway":
            argv += ["--header", f"Authorization=Bearer {self.key}"]
        cpu_before = {k: cpu_seconds(v) for k, v in pids.items()}
        log = self.logs / f"bench-{tag}.log"
        result = run_load_in_process(argv, log)
        cpu_after = {k: cpu_seconds(v) for k, v in pids.items()}
        # The key is a secret: it must not stay in the log or the results.
        log.write_text(log.read_text().replace(self.key, REDACTED))
        result["argv"] = [a.replace(self.key, REDACTED) for a in result["argv"]]
        result["front_cpu_s"] = {
            k: round(cpu_after[k] - cpu_before[k], 2)  # type: ignore[operator]
            for k in pids
            if cpu_before.get(k) is not None and cpu_after.get(k) is not None
        }
        result["prefix_cache_reset_status"] = reset
        if result.get("completed") != load.requests:
            raise RuntimeError(f"{tag}: {result.get('completed')}/{load.requests} requests completed")
        self.say(
            f"{tag}: {_fmt(result.get('output_throughput'))} tok/s, TTFT median {_fmt(result.get('median_ttft_ms'))} ms, "
            f"TPOT median {_fmt(result.get('median_tpot_ms'))} ms, front CPU {result['front_cpu_s']}"
        )
        return result

    def measure_interleaved(self, engine: Engine, urls: dict[str, str]) -> None:
        """Per concurrency: one load with direct, edge-hop and gateway interleaved (``bench/gpu/interleaved.py``)."""
        headers = {"direct": dict(h.split("=", 1) for h in PROXY_HEADERS), "gateway": self._auth()}
        headers["edge-hop"] = headers["direct"]
        sides = [interleaved.Side(name, urls[name], headers[name]) for name in INTERLEAVED_SIDES]
        record: dict[str, Any] = {
            "method": "interleaved: request i goes to side i mod 3, one load per concurrency",
            "input_len": self.args.input_len,
            "output_len": self.args.output_len,
            "per_concurrency": {},
        }
        self.results["interleaved"] = record
        for c in self.args.concurrency:
            count = self.args.interleaved if c > 1 else self.args.interleaved_c1
            with httpx.Client(timeout=30.0) as client:
                client.post(f"{engine.url}/reset_prefix_cache")
            warm = interleaved.prompts(3 * max(2, c), self.args.input_len, seed=7000 + c)
            asyncio.run(interleaved.run(sides, SERVED_NAME, warm, concurrency=c, output_len=8))
            prompt_ids = interleaved.prompts(count, self.args.input_len, seed=8000 + c)
            started = time.monotonic()
            sent = asyncio.run(
                interleaved.run(sides, SERVED_NAME, prompt_ids, concurrency=c, output_len=self.args.output_len)
            )
            summary = interleaved.summarise(sent, "direct")
            summary["wall_s"] = round(time.monotonic() - started, 1)
            record["per_concurrency"][str(c)] = summary
            self.say(f"interleaved c={c}: {json.dumps(summary['added_median_ttft_ms'])}")
            self.save()
        added = {
            c: entry["added_median_ttft_ms"].get("gateway", {}).get("run")
            for c, entry in record["per_concurrency"].items()
        }
        record["worst_added_median_ttft_ms"] = max((v for v in added.values() if v is not None), default=None)
        record["goal_added_median_ttft_ms_at_most"] = GOAL_ADDED_TTFT_MS
        self.save()

    def summarise(self) -> None:
        """Per concurrency: gateway/direct throughput and added median TTFT (medians over pairs); the goal."""
        runs = self.results["load"]["runs"]
        per: dict[str, Any] = {}
        for c in self.args.concurrency:
            direct, gateway = runs.get(f"direct c={c}", []), runs.get(f"gateway c={c}", [])
            pairs = min(len(direct), len(gateway))
            if not pairs:
                continue
            direct, gateway = direct[:pairs], gateway[:pairs]
            entry: dict[str, Any] = {"pairs": pairs, "prompts_per_run": direct[0]["completed"]}
            for key in ("output_throughput", "median_ttft_ms", "p99_ttft_ms", "median_tpot_ms"):
                entry[key] = {
                    "direct": [_round(r.get(key)) for r in direct],
                    "gateway": [_round(r.get(key)) for r in gateway],
                }
            entry["throughput_ratio_gateway_over_direct"] = round(
                _median(gateway, "output_throughput") / _median(direct, "output_throughput"), 4
            )
            entry["added_median_ttft_ms"] = round(
                _median(gateway, "median_ttft_ms") - _median(direct, "median_ttft_ms"), 2
            )
            entry["added_median_tpot_ms"] = round(
                _median(gateway, "median_tpot_ms") - _median(direct, "median_tpot_ms"), 3
            )
            entry["gateway_cpu_s_per_run"] = statistics.median(r["front_cpu_s"].get("gateway", 0.0) for r in gateway)
            entry["edge_cpu_s_per_run"] = statistics.median(r["front_cpu_s"].get("edge", 0.0) for r in direct)
            per[str(c)] = entry
        summary: dict[str, Any] = {"per_concurrency": per}
        if per:
            summary["worst_throughput_ratio"] = min(v["throughput_ratio_gateway_over_direct"] for v in per.values())
            summary["worst_added_median_ttft_ms"] = max(v["added_median_ttft_ms"] for v in per.values())
            summary["goal"] = {
                "throughput_ratio_at_least": GOAL_RATIO,
                "added_median_ttft_ms_at_most": GOAL_ADDED_TTFT_MS,
            }
            summary["goal_met"] = (
                summary["worst_throughput_ratio"] >= GOAL_RATIO
                and summary["worst_added_median_ttft_ms"] <= GOAL_ADDED_TTFT_MS
                and len(per) == len(self.args.concurrency)
            )
        self.results["summary"] = summary

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self.engine is not None:
            self.engine.stop()


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


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
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--pairs", type=int, default=3, help="measured (direct, gateway) pairs per concurrency")
    parser.add_argument("--min-prompts", type=int, default=16, help="prompts per run: max(this, 4 x concurrency)")
    parser.add_argument(
        "--second-hop",
        choices=("gateway", "edge"),
        default="gateway",
        help="what stands in front of the edge on the 'gateway' side; 'edge': a second plain edge (control)",
    )
    parser.add_argument("--budget-s", type=float, default=330.0, help="start no pair after this (beyond the first)")
    parser.add_argument(
        "--interleaved",
        type=int,
        default=0,
        help="also run the interleaved load (bench/gpu/interleaved.py) with this many requests per concurrency > 1",
    )
    parser.add_argument("--interleaved-c1", type=int, default=96, help="requests of the interleaved load at c=1")
    parser.add_argument("--input-len", type=int, default=512)
    parser.add_argument("--output-len", type=int, default=128)
    args = parser.parse_args()
    run = Run(args)
    try:
        engine = run.boot()
        urls = run.start_fronts(engine)
        if args.pairs:
            run.measure(engine, urls)
        if args.interleaved:
            run.measure_interleaved(engine, urls)
        run.results["done"] = True
    except Exception:
        run.results.setdefault("errors", []).append(traceback.format_exc().replace(run.key or REDACTED, REDACTED))
        if run.engine is not None:
            run.results["vllm_log_tail"] = run.engine.log_tail(60)
        run.say("FAILED\n" + traceback.format_exc().replace(run.key or REDACTED, REDACTED))
    finally:
        run.stop()
        run.save()
        run.say("ALL DONE")
    return 0 if run.results.get("done") else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
