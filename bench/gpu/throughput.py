"""Serving throughput at a fixed concurrency, measured with vLLM's own load generator.

``vllm bench serve`` is what the bare-vLLM baseline in ``shared/notes/gpu.md`` used, so
the same tool with the same arguments measures vLLM directly and through the edge. If
it fails on the device (a missing optional dependency, say), a small asyncio client
with the same shape of load (random token-id prompts, ignore_eos) stands in, and the
result names which tool produced it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Headers Modal's proxy lets through with an authenticated request; the edge drops them.
# vllm bench serve takes them as ONE --header with several KEY=VALUE arguments.
PROXY_HEADERS = ("Modal-Key=wk-bench", "Modal-Secret=ws-bench")
KEEP = (
    "completed",
    "failed",
    "duration",
    "request_throughput",
    "output_throughput",
    "total_token_throughput",
    "total_input_tokens",
    "total_output_tokens",
    "max_concurrency",
)
PERCENTILE_KEY = re.compile(r"(median|mean|p50|p90|p99)_(ttft|tpot|itl|e2el)_ms")


@dataclass(frozen=True)
class Load:
    """The shape of the load: the baseline's (512 in / 128 out, 256 requests, 64 in flight)."""

    input_len: int = 512
    output_len: int = 128
    requests: int = 256
    concurrency: int = 64
    warmups: int = 8


def bench_command(
    base_url: str, served_name: str, tokenizer: str, load: Load, result: Path, *, edge: bool, seed: int = 0
) -> list[str]:
    """The exact ``vllm bench serve`` argv for one measurement."""
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.cli.main",
        "bench",
        "serve",
        "--backend",
        "vllm",
        "--base-url",
        base_url,
        "--model",
        served_name,
        "--tokenizer",
        tokenizer,
        "--dataset-name",
        "random",
        "--random-input-len",
        str(load.input_len),
        "--random-output-len",
        str(load.output_len),
        "--num-prompts",
        str(load.requests),
        "--max-concurrency",
        str(load.concurrency),
        "--ignore-eos",
        "--num-warmups",
        str(load.warmups),
        "--percentile-metrics",
        "ttft,tpot,itl,e2el",
        "--metric-percentiles",
        "50,90,99",
        "--save-result",
        "--result-dir",
        str(result.parent),
        "--result-filename",
        result.name,
        "--disable-tqdm",
        "--seed",
        str(seed),
    ]
    if edge:
        command += ["--header", *PROXY_HEADERS]
    return command


def run_bench(
    base_url: str, served_name: str, tokenizer: str, load: Load, result: Path, log: Path, *, edge: bool, seed: int = 0
) -> dict[str, Any]:
    """One measurement; the figures that matter, the command, and the tool that produced them."""
    command = bench_command(base_url, served_name, tokenizer, load, result, edge=edge, seed=seed)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=400, env=env, check=False)
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as error:
        output, code = str(error.stdout or ""), -1
    log.write_text(" ".join(command) + "\n" + output)
    figures: dict[str, Any] = {"tool": "vllm bench serve", "command": command, "rc": code}
    figures["wall_s"] = round(time.monotonic() - started, 1)
    # Direct, vLLM's /tokenize may re-align the random prompts; through the edge it is private (404).
    figures["prompts_realigned"] = "re-aligning prompts" in output
    if code == 0 and result.exists():
        saved = json.loads(result.read_text())
        figures.update({key: saved.get(key) for key in KEEP})
        figures.update({key: value for key, value in saved.items() if PERCENTILE_KEY.fullmatch(key)})
        return figures
    figures["tail"] = output[-2000:]
    figures["tool"] = "bench/gpu/throughput.py asyncio client (vllm bench serve failed)"
    extra = dict(h.split("=", 1) for h in PROXY_HEADERS) if edge else {}
    try:
        figures.update(asyncio.run(_fallback(base_url, served_name, load, extra)))
    except Exception as error:  # the fallback is a last resort: record why it failed too
        figures["fallback_error"] = repr(error)
    return figures


async def _fallback(base_url: str, model: str, load: Load, headers: dict[str, str]) -> dict[str, Any]:
    import aiohttp

    rng = random.Random(0)
    prompts = [[rng.randrange(10, 31000) for _ in range(load.input_len)] for _ in range(load.requests)]
    gate = asyncio.Semaphore(load.concurrency)
    samples: list[tuple[float, float, int]] = []

    async def one(session: aiohttp.ClientSession, prompt: list[int]) -> None:
        body = {
            "model": model,
            "prompt": prompt,
            "max_tokens": load.output_len,
            "ignore_eos": True,
            "temperature": 0.0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        async with gate:
            started = time.perf_counter()
            first, tokens = 0.0, 0
            async with session.post(f"{base_url}/v1/completions", json=body, headers=headers) as response:
                async for raw in response.content:
                    line = raw.strip()
                    if not line.startswith(b"data: ") or line == b"data: [DONE]":
                        continue
                    chunk = json.loads(line[6:])
                    if chunk.get("usage"):
                        tokens = chunk["usage"]["completion_tokens"]
                    if chunk.get("choices") and not first:
                        first = time.perf_counter() - started
            samples.append((first, time.perf_counter() - started, tokens))

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        await asyncio.gather(*(one(session, p) for p in prompts[: load.warmups]))
        samples.clear()
        started = time.perf_counter()
        await asyncio.gather(*(one(session, p) for p in prompts))
        duration = time.perf_counter() - started
    tokens = sum(s[2] for s in samples)
    return {
        "completed": len(samples),
        "duration": duration,
        "request_throughput": len(samples) / duration,
        "output_throughput": tokens / duration,
        "median_ttft_ms": statistics.median(s[0] for s in samples) * 1000,
        "median_tpot_ms": statistics.median((s[1] - s[0]) / max(s[2] - 1, 1) for s in samples) * 1000,
    }


def ratio(edge: list[dict[str, Any]], direct: list[dict[str, Any]], key: str = "output_throughput") -> float | None:
    """Median of the edge's figure over the median of direct's (None if either side has none)."""
    edge_values = [float(r[key]) for r in edge if isinstance(r.get(key), (int, float))]
    direct_values = [float(r[key]) for r in direct if isinstance(r.get(key), (int, float))]
    if not edge_values or not direct_values:
        return None
    return round(statistics.median(edge_values) / statistics.median(direct_values), 4)
