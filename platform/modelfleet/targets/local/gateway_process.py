"""The local fleet's one gateway process: fleet.toml's ``[gateway]`` in front of every running edge.

``fleet up`` starts it detached (like a model's supervisor) once its models are up, and
starts it again whenever the set of running edges changes (the gateway's router is fixed
when it is built); ``fleet down`` stops it with the last model. Its record is
``.fleet/gateway.json`` (pid, port, the edges it was built for), its output
``.fleet/logs/gateway.log``.

The edges check tokens themselves (``auth_mode_for(..., platform_checks_tokens=False)``), so
the gateway needs one: it mints a service token in the fleet's token store when it starts
(only the hash is written, in the 0600 store), holds the secret in memory only -- never in
a file, an argument or a log -- and revokes it when it exits. A token left by a gateway
killed without a chance to revoke is revoked by the next one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from modelfleet.files import write_atomic
from modelfleet.runtime.tokens import Credentials, TokenError, TokenStore
from modelfleet.settings import FleetSettings
from modelfleet.targets.local.processes import is_alive, stop_group
from modelfleet.targets.local.runs import RunBook

GATEWAY_RECORD = "gateway.json"
SERVICE_TOKEN_PREFIX = "gateway-"
READY_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.2


@dataclass
class GatewayRun:
    """The running gateway process: where it listens and which edges it routes to."""

    pid: int
    host: str
    port: int
    upstreams: dict[str, str]  # served name -> edge URL
    started_at: float = field(default_factory=time.time)
    last_error: str = ""

    @property
    def url(self) -> str:
        """Where clients call it (``<url>/v1``); a gateway bound to every address is reached on loopback."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


class GatewayBook:
    """``.fleet/gateway.json`` and ``.fleet/logs/gateway.log``."""

    def __init__(self, state_path: Path) -> None:
        self.path = state_path / GATEWAY_RECORD
        self.log_path = state_path / "logs" / "gateway.log"

    def read(self) -> GatewayRun | None:
        """The record, or None when no gateway was started (or the record is unreadable)."""
        try:
            return GatewayRun(**json.loads(self.path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None

    def write(self, run: GatewayRun) -> None:
        """Replace the record atomically."""
        write_atomic(self.path, json.dumps(asdict(run), indent=2))

    def forget(self) -> None:
        """Remove the record (the gateway no longer runs)."""
        self.path.unlink(missing_ok=True)


def running_edges(settings: FleetSettings) -> dict[str, str]:
    """Served name -> edge URL of every model whose supervisor is alive (starting ones too: the gateway holds cold starts)."""
    from modelfleet.catalog import load_catalog

    catalog = load_catalog(settings)
    edges = {}
    for run in RunBook(settings.state_path).all():
        model = catalog.models.get(run.model)
        if model is not None and is_alive(run.supervisor_pid):
            edges[model.served_name] = run.url
    return edges


def sync_gateway(settings: FleetSettings) -> GatewayRun | None:
    """Make the gateway match the running edges: unchanged, restarted, started, or stopped when none runs.

    Returns the record of the gateway now running (``last_error`` set when it did not come
    up), or None when no model runs.
    """
    book = GatewayBook(settings.state_path)
    wanted = running_edges(settings)
    config = settings.gateway
    current = book.read()
    if current and is_alive(current.pid):
        if current.upstreams == wanted and (current.host, current.port) == (config.host, config.port):
            return current
        stop_gateway(settings)
    elif current:
        book.forget()
    if not wanted:
        return None
    return _spawn(settings, book, wanted)


def stop_gateway(settings: FleetSettings) -> bool:
    """Stop the gateway (SIGTERM: streams finish first) and forget its record; True when one ran."""
    book = GatewayBook(settings.state_path)
    current = book.read()
    if current is None:
        return False
    stop_group(current.pid)
    book.forget()
    return True


def gateway_health(run: GatewayRun) -> str:
    """ "healthy" when ``/health`` answers 200 (it never calls a model), else why not."""
    if not is_alive(run.pid):
        return "down"
    try:
        response = httpx.get(f"{run.url}/health", timeout=3.0)
    except httpx.HTTPError:
        return "unreachable"
    return "healthy" if response.status_code == 200 else str(response.status_code)


def _spawn(settings: FleetSettings, book: GatewayBook, upstreams: dict[str, str]) -> GatewayRun:
    config = settings.gateway
    book.log_path.parent.mkdir(parents=True, exist_ok=True)
    with book.log_path.open("ab") as sink:
        process = subprocess.Popen(
            # Edge URLs are no secret; the service token is minted inside the process.
            [
                sys.executable,
                "-m",
                "modelfleet.targets.local.gateway_process",
                "--edges",
                json.dumps(upstreams),
                "--host",
                config.host,
                "--port",
                str(config.port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=settings.root,
            env={**os.environ, "FLEET_ROOT": str(settings.root)},
            start_new_session=True,  # survives this command, like the model supervisors
        )
    run = GatewayRun(pid=process.pid, host=config.host, port=config.port, upstreams=upstreams)
    book.write(run)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            run.last_error = f"the gateway exited with code {process.returncode}: {_log_tail(book.log_path)}"
            break
        if gateway_health(run) == "healthy":
            return run
        time.sleep(POLL_SECONDS)
    else:
        run.last_error = f"the gateway did not answer /health within {READY_TIMEOUT_SECONDS:.0f}s"
    stop_group(run.pid)
    book.write(run)
    return run


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "no log"


def _revoke_orphaned_tokens(store: TokenStore) -> None:
    """Service tokens of gateways that died without revoking theirs (named ``gateway-<pid>-...``)."""
    for entry in store.list():
        if not entry.name.startswith(SERVICE_TOKEN_PREFIX):
            continue
        pid_text = entry.name[len(SERVICE_TOKEN_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and not is_alive(int(pid_text)):
            with contextlib.suppress(TokenError):
                store.revoke(entry.name)


def main() -> None:
    """The detached gateway process: mint the service token, serve until SIGTERM, revoke it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edges", required=True, help="JSON object: served name -> edge URL.")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    edges: dict[str, str] = json.loads(args.edges)
    from modelfleet.catalog import load_catalog
    from modelfleet.gateway.server import fleet_gateway, gateway_server, upstream_for

    settings = FleetSettings()
    catalog = load_catalog(settings)
    store = TokenStore(settings.tokens_path)
    _revoke_orphaned_tokens(store)
    name = f"{SERVICE_TOKEN_PREFIX}{os.getpid()}-{int(time.time())}"
    key, secret = store.create(name)
    try:
        headers = Credentials(key, secret).headers()
        by_served = {model.served_name: model for model in catalog.models.values()}
        upstreams = {
            served: upstream_for(by_served[served], url, headers)
            for served, url in edges.items()
            if served in by_served
        }
        app = fleet_gateway(settings, upstreams)
        print(f"gateway on {args.host}:{args.port} -> {', '.join(sorted(upstreams))}")
        sys.stdout.flush()
        server = gateway_server(app, host=args.host, port=args.port)

        def stop(signum: int, frame: object) -> None:
            # uvicorn holds SIGTERM/SIGINT while it serves, drains, then raises the signal again
            # (uvicorn/server.py, capture_signals): with the default action the process would die
            # there, before ``finally`` revokes the service token. Here it only asks to stop.
            server.should_exit = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        server.run()
    finally:
        store.revoke(name)


if __name__ == "__main__":
    main()
