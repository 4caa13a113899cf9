"""The edge as its own process (``runtime/edge_process.py``): what a serving container starts once vLLM serves.

The upstream here is a real HTTP server on loopback standing in for vLLM's /health and a
slow streamed answer; the edge is the real ``edge_main`` process under the real guardian.
"""

from __future__ import annotations

import os
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from modelfleet.runtime.edge_main import parser
from modelfleet.runtime.edge_process import EdgeProcess, EdgeStartError
from modelfleet.runtime.guardian import GUARDIAN
from modelfleet.runtime.ports import free_port
from tests.support.waiting import wait_until


class _Upstream(BaseHTTPRequestHandler):
    healthy = True

    def do_GET(self) -> None:
        self.send_response(200 if self.healthy else 503)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        # A stream of three chunks over ~1.5 s: long enough to be in flight when SIGTERM comes.
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for index in range(3):
            time.sleep(0.5)
            data = f"data: {index}\n\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Upstream.healthy = True
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _edge(upstream: str, tmp_path: Path, *, grace: int = 10) -> EdgeProcess:
    return EdgeProcess(
        upstream_url=upstream,
        port=free_port(),
        auth_mode="modal-proxy",
        upstream_timeout=30.0,
        grace=grace,
        log_path=tmp_path / "edge.log",
        host="127.0.0.1",
        health_info={"boot": "restore", "snapshot": "gpu", "boot_seconds": 4.2},
    )


def test_the_edge_process_listens_on_its_port_and_reports_the_boot_on_health(upstream: str, tmp_path: Path) -> None:
    edge = _edge(upstream, tmp_path)
    edge.start(timeout=30)
    try:
        assert edge.running
        answer = httpx.get(f"http://127.0.0.1:{edge.port}/health", timeout=10)
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok", "boot": "restore", "snapshot": "gpu", "boot_seconds": 4.2}
        # It runs under the guardian, in a process group of its own, not in this process.
        assert edge.process is not None and edge.process.args[1] == str(GUARDIAN)
        assert os.getpgid(edge.process.pid) == edge.process.pid != os.getpgrp()
    finally:
        edge.stop()
    assert not edge.running


def test_health_is_not_ok_while_the_engine_behind_the_edge_is_not(upstream: str, tmp_path: Path) -> None:
    _Upstream.healthy = False
    edge = _edge(upstream, tmp_path)
    edge.start(timeout=30)
    try:
        answer = httpx.get(f"http://127.0.0.1:{edge.port}/health", timeout=10)
        assert answer.status_code == 503
        assert answer.json()["status"] == "unavailable"
    finally:
        edge.stop()


def test_stopping_the_edge_lets_a_stream_in_flight_finish(upstream: str, tmp_path: Path) -> None:
    edge = _edge(upstream, tmp_path, grace=10)
    edge.start(timeout=30)
    received: list[bytes] = []

    def stream() -> None:
        with httpx.stream("POST", f"http://127.0.0.1:{edge.port}/v1/completions", json={}, timeout=30) as answer:
            received.extend(answer.iter_bytes())

    client = threading.Thread(target=stream)
    client.start()
    assert wait_until(edge.log_path.exists, 10), "the edge never opened its log"
    time.sleep(0.3)  # the request is in flight (its first chunk comes at 0.5 s)
    edge.stop()
    client.join(timeout=30)
    assert b"".join(received) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"


def test_an_edge_that_exits_at_start_fails_with_its_log(upstream: str, tmp_path: Path) -> None:
    edge = _edge(upstream, tmp_path)
    edge.auth_mode = "tokens"  # without --tokens FILE: edge_main refuses to start
    with pytest.raises(EdgeStartError, match=r"exited with code \d+ before it listened[\s\S]*--tokens FILE"):
        edge.start(timeout=30)
    assert not edge.running


def test_the_argv_the_container_runs_is_one_edge_main_accepts(tmp_path: Path) -> None:
    edge = _edge("http://127.0.0.1:8001", tmp_path, grace=600)
    argv = edge.argv()
    assert argv[1:3] == ["-m", "modelfleet.runtime.edge_main"]
    args = parser().parse_args(argv[3:])
    assert (args.auth, args.graceful_shutdown, args.timeout) == ("modal-proxy", 600, 30.0)
    assert args.health_json == {"boot": "restore", "snapshot": "gpu", "boot_seconds": 4.2}


class _UnixHttpServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _UnixUpstream(_Upstream):
    def address_string(self) -> str:  # a Unix socket's peer has no host to print
        return "unix"


def test_the_edge_relays_to_an_engine_that_serves_on_a_unix_socket(tmp_path: Path) -> None:
    # The local target's isolated vLLM serves on --uds: the edge's only way to it is that file.
    socket_path = tmp_path / "vllm.sock"
    server = _UnixHttpServer(str(socket_path), _UnixUpstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Upstream.healthy = True
    edge = EdgeProcess(
        upstream_url="http://localhost",
        upstream_socket=str(socket_path),
        port=free_port(),
        auth_mode="modal-proxy",
        upstream_timeout=30.0,
        grace=5,
        log_path=tmp_path / "edge.log",
        host="127.0.0.1",
    )
    try:
        edge.start(timeout=30)
        base = f"http://127.0.0.1:{edge.port}"
        assert httpx.get(f"{base}/health", timeout=10).status_code == 200
        streamed = httpx.post(f"{base}/v1/completions", json={}, timeout=30)
        assert streamed.status_code == 200 and streamed.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
    finally:
        edge.stop()
        server.shutdown()
