"""Run the edge as its own process: ``python -m modelfleet.runtime.edge_main --upstream URL --port N``.

For owners that keep the edge out of their own process (the Modal container, whose hook
process is Modal's runtime; benchmarks), so the edge's event loop never shares a GIL with
other work. It serves ``edge.edge_server``, the builder every owner uses. SIGTERM drains:
requests in flight get ``--graceful-shutdown`` seconds to finish before uvicorn cancels them.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import get_args

from modelfleet.runtime.edge import DEFAULT_REPORT_INTERVAL, AuthMode, EdgeConfig, edge_server
from modelfleet.runtime.tokens import TokenStore


def _health_json(text: str) -> dict[str, object]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--health-json must be a JSON object")
    return value


def parser() -> argparse.ArgumentParser:
    """The command line (its own function so owners and tests can check an argv against it)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True, help="vLLM's base URL, e.g. http://127.0.0.1:8001")
    parser.add_argument(
        "--upstream-socket", default=None, help="vLLM's Unix socket (vllm serve --uds); --upstream then names the Host"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--auth", choices=get_args(AuthMode), default="tokens")
    parser.add_argument("--tokens", type=Path, help="token store file (auth 'tokens')")
    parser.add_argument("--max-body-bytes", type=int, default=8 * 2**20)
    parser.add_argument("--timeout", type=float, default=600.0, help="upstream timeout in seconds")
    parser.add_argument(
        "--graceful-shutdown",
        type=int,
        default=None,
        help="seconds in-flight requests get to finish after SIGTERM (default: no limit)",
    )
    parser.add_argument(
        "--health-json",
        type=_health_json,
        default=None,
        help="a JSON object added to every /health answer (how the container booted); no secrets",
    )
    parser.add_argument(
        "--report-interval",
        type=float,
        default=DEFAULT_REPORT_INTERVAL,
        help="seconds between reads of the engine's /metrics for the x-fleet-replica report (0: no report)",
    )
    parser.add_argument("--log-requests", action="store_true", help="one INFO line per request")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and serve until SIGTERM or Ctrl-C."""
    command = parser()
    args = command.parse_args(argv)
    if args.auth == "tokens" and args.tokens is None:
        command.error("--auth tokens needs --tokens FILE")
    logging.basicConfig(level=logging.INFO if args.log_requests else logging.WARNING, format="%(message)s")
    extra: dict[str, object] = dict(args.health_json or {})
    config = EdgeConfig(
        upstream_url=args.upstream,
        upstream_socket=args.upstream_socket,
        auth_mode=args.auth,
        token_store=TokenStore(args.tokens) if args.tokens else None,
        max_body_bytes=args.max_body_bytes,
        upstream_timeout=args.timeout,
        health_info=(lambda: extra) if extra else None,
        report_interval=args.report_interval if args.report_interval > 0 else None,
    )
    edge_server(config, host=args.host, port=args.port, graceful_shutdown=args.graceful_shutdown).run()


if __name__ == "__main__":
    main()
