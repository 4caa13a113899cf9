"""Run the edge as its own process: ``python -m modelfleet.runtime.edge_main --upstream URL --port N``.

For owners that keep the edge out of their own process (benchmarks, a container whose
entrypoint is a shell), so the edge's event loop never shares a GIL with other work.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import get_args

from modelfleet.runtime.edge import AuthMode, EdgeConfig, serve_edge
from modelfleet.runtime.tokens import TokenStore


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and serve until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True, help="vLLM's base URL, e.g. http://127.0.0.1:8001")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--auth", choices=get_args(AuthMode), default="tokens")
    parser.add_argument("--tokens", type=Path, help="token store file (auth 'tokens')")
    parser.add_argument("--max-body-bytes", type=int, default=8 * 2**20)
    parser.add_argument("--timeout", type=float, default=600.0, help="upstream timeout in seconds")
    parser.add_argument("--log-requests", action="store_true", help="one INFO line per request")
    args = parser.parse_args(argv)
    if args.auth == "tokens" and args.tokens is None:
        parser.error("--auth tokens needs --tokens FILE")
    logging.basicConfig(level=logging.INFO if args.log_requests else logging.WARNING, format="%(message)s")
    config = EdgeConfig(
        upstream_url=args.upstream,
        auth_mode=args.auth,
        token_store=TokenStore(args.tokens) if args.tokens else None,
        max_body_bytes=args.max_body_bytes,
        upstream_timeout=args.timeout,
    )
    serve_edge(config, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
