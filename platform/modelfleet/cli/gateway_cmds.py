"""Gateway commands: ``fleet keys`` (client keys), ``fleet usage`` (the ledger), ``fleet gateway serve``.

Keys go to the store fleet.toml's ``[gateway]`` names (the local 0600 file on the local
target, the Modal Dict on Modal); a key is printed once, at creation, and never again.
"""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import date
from typing import Literal

import typer
from rich.table import Table

from modelfleet.catalog import load_catalog
from modelfleet.cli.common import UserError, console, load_settings, load_settings_and_catalog, user_errors
from modelfleet.gateway.config import GatewayConfig
from modelfleet.gateway.keys import KeyLimits, KeyRecord, KeyStore, new_key, now_text
from modelfleet.gateway.ledger import COLUMNS, UsageRow
from modelfleet.gateway.server import fleet_gateway, open_key_store, open_ledger, serve_gateway
from modelfleet.gateway.upstream import Upstream
from modelfleet.settings import FleetSettings

keys_app = typer.Typer(
    help="Client keys of the fleet gateway: create (shown once), list, revoke.", no_args_is_help=True
)
gateway_app = typer.Typer(help="The fleet's one OpenAI-compatible endpoint.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``keys``, ``usage`` and ``gateway`` to the ``fleet`` app."""
    app.add_typer(keys_app, name="keys")
    app.command("usage")(usage)
    app.add_typer(gateway_app, name="gateway")


def _config(settings: FleetSettings) -> GatewayConfig:
    return settings.gateway


def _store(settings: FleetSettings, config: GatewayConfig) -> KeyStore:
    return open_key_store(
        config, settings.state_path, target=settings.target, modal_environment=settings.modal_environment
    )


def _known_names(settings: FleetSettings, config: GatewayConfig) -> set[str]:
    catalog = load_catalog(settings)
    return {model.served_name for model in catalog.models.values()} | set(config.aliases)


@keys_app.command("create")
def keys_create(
    name: str = typer.Argument(help="A name to recognise the key by (its usage is recorded under it)."),
    models: str | None = typer.Option(None, "--models", help="Comma-separated served names or aliases (default: all)."),
    rpm: int | None = typer.Option(None, "--rpm", min=1, help="Requests per minute."),
    tpm: int | None = typer.Option(None, "--tpm", min=1, help="Tokens per minute (prompt estimate + max_tokens)."),
    daily_tokens: int | None = typer.Option(None, "--daily-tokens", min=1, help="Tokens per UTC day."),
    monthly_usd: float | None = typer.Option(None, "--monthly-usd", min=0.0, help="USD of GPU time per month."),
    expires: str | None = typer.Option(None, "--expires", help="Last day the key works, YYYY-MM-DD (UTC)."),
    admin: bool = typer.Option(
        False, "--admin", help="An admin key: opens the gateway's /metrics (Prometheus), calls no model."
    ),
    output: Literal["text", "json"] = typer.Option("text", "--format", "-f", help="Output format."),
) -> None:
    """Create a client key (or with --admin the key Prometheus scrapes /metrics with); it is shown once and only
    its salted hash is stored."""
    with user_errors():
        settings = load_settings()
        config = _config(settings)
        allowed = tuple(m.strip() for m in models.split(",") if m.strip()) if models is not None else None
        if allowed is not None:
            known = _known_names(settings, config)
            unknown = sorted(set(allowed) - known)
            if unknown or not allowed:
                raise UserError(
                    f"--models: unknown {', '.join(unknown) or '(empty list)'}; known: {', '.join(sorted(known))}"
                )
        if monthly_usd is not None and monthly_usd <= 0:
            raise UserError(f"--monthly-usd: must be more than 0, got {monthly_usd}")
        limits = KeyLimits(
            models=allowed,
            rpm=rpm,
            tpm=tpm,
            daily_tokens=daily_tokens,
            monthly_usd=monthly_usd,
            expires=_day(expires, "--expires") if expires else None,
        )
        record, key = new_key(name, limits, "admin" if admin else "client")
        _store(settings, config).add(record)
        if output == "json":
            typer.echo(json.dumps({**_shown(record), "key": key}))
            return
        console.print(f"{record.scope} key {name!r} (id {record.key_id}):\n  {key}", highlight=False)
        console.print("store it now: it is not shown again (only its hash is kept)", style="yellow")
        if admin:
            console.print(
                f"scrape with it: curl -H 'Authorization: Bearer <the key>' http://{config.host}:{config.port}/metrics"
            )
        else:
            console.print(f"use it: OpenAI(base_url='http://{config.host}:{config.port}/v1', api_key=<the key>)")


@keys_app.command("list")
def keys_list(
    output: Literal["table", "json"] = typer.Option("table", "--format", "-f", help="Output format."),
) -> None:
    """Every key's name, id, limits, creation, expiry and revocation (never a secret or a hash)."""
    with user_errors():
        settings = load_settings()
        records = sorted(_store(settings, _config(settings)).load().values(), key=lambda r: (r.created, r.name))
        if output == "json":
            typer.echo(json.dumps([_shown(record) for record in records], indent=2))
            return
        table = Table(title="gateway keys")
        columns = (
            "name",
            "id",
            "scope",
            "models",
            "rpm",
            "tpm",
            "daily tokens",
            "monthly $",
            "expires",
            "created",
            "revoked",
        )
        for column in columns:
            table.add_column(column)
        for record in records:
            shown = _shown(record)
            table.add_row(
                record.name,
                record.key_id,
                record.scope,
                ",".join(record.limits.models)
                if record.limits.models
                else ("none" if record.scope == "admin" else "all"),
                *(str(shown[k] or "") for k in ("rpm", "tpm", "daily_tokens", "monthly_usd", "expires")),
                record.created,
                record.revoked or "",
            )
        console.print(table)


@keys_app.command("revoke")
def keys_revoke(name: str = typer.Argument(help="The key's name.")) -> None:
    """Revoke a key: every gateway process refuses it within its key cache TTL (<= 5 s)."""
    with user_errors():
        settings = load_settings()
        config = _config(settings)
        _store(settings, config).revoke(name, now_text())
        console.print(f"revoked {name}; gateways refuse it within {config.key_cache_ttl_s:g} s", highlight=False)


def usage(
    key: str | None = typer.Option(None, "--key", help="Only this key's name."),
    since: str | None = typer.Option(None, "--since", help="From this UTC day on, YYYY-MM-DD."),
    output: Literal["table", "json", "csv"] = typer.Option("table", "--format", "-f", help="Output format."),
) -> None:
    """Gateway usage per key, model and day: requests, tokens, errors, GPU-seconds, cost (counts only)."""
    with user_errors():
        settings = load_settings()
        ledger = open_ledger(
            _config(settings), settings.state_path, target=settings.target, modal_environment=settings.modal_environment
        )
        rows = ledger.rows(since=_day(since, "--since") if since else None, key=key)
        typer.echo(render_usage(rows, output), nl=False)


def render_usage(rows: list[UsageRow], output: Literal["table", "json", "csv"]) -> str:
    """The rows as a table, JSON or CSV text."""
    if output == "json":
        return json.dumps([row.as_dict() for row in rows], indent=2) + "\n"
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(row.as_dict() for row in rows)
        return buffer.getvalue()
    table = Table(title="gateway usage (UTC days)")
    for column in COLUMNS:
        table.add_column(column.replace("_", " "), justify="left" if column in ("day", "key", "model") else "right")
    for row in rows:
        c = row.counts
        table.add_row(
            row.day,
            row.key,
            row.model,
            *(str(v) for v in (c.requests, c.errors, c.rejected, c.prompt_tokens, c.completion_tokens)),
            f"{c.gpu_seconds:.2f}",
            f"{c.cost_usd:.6f}",
        )
    capture = io.StringIO()
    from rich.console import Console

    Console(file=capture, width=console.width, soft_wrap=True).print(table)
    return capture.getvalue()


@gateway_app.command("serve")
def gateway_serve(
    upstream: list[str] = typer.Option(
        ..., "--upstream", help="SERVED_NAME=URL of a model endpoint (repeatable; the same URL may serve two names)."
    ),
    host: str | None = typer.Option(None, "--host", help="Address to bind (default: [gateway] host)."),
    port: int | None = typer.Option(None, "--port", help="Port (default: [gateway] port)."),
) -> None:
    """Serve the gateway on this machine in front of the given model endpoints (blocks).

    Each model is called with FLEET_PROXY_TOKEN_ID / FLEET_PROXY_TOKEN_SECRET as Modal-Key /
    Modal-Secret when set (the local edges and Modal's proxy auth take the same headers).
    GPU type and count come from the catalog model of the same served name (for cost).
    """
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        config = _config(settings)
        by_served = {model.served_name: model for model in catalog.models.values()}
        headers = _proxy_headers()
        upstreams: dict[str, Upstream] = {}
        for item in upstream:
            served, sep, url = item.partition("=")
            if not sep or not served or not url.startswith(("http://", "https://")):
                raise UserError(f"--upstream {item!r}: expected SERVED_NAME=http://host:port")
            model = by_served.get(served)
            upstreams[served] = Upstream(
                url, headers, model.spec.gpu.type if model else "", model.spec.gpu.count if model else 1
            )
        app = fleet_gateway(settings, upstreams, config)
        bind_host, bind_port = host or config.host, port or config.port
        console.print(f"gateway on http://{bind_host}:{bind_port}/v1 -> {', '.join(sorted(upstreams))}")
        serve_gateway(app, host=bind_host, port=bind_port)


@gateway_app.command("deploy")
def gateway_deploy(
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Deploy uncommitted changes (tagged -dirty)."),
) -> None:
    """Modal target: deploy the gateway's app in front of every deployed model (CI: once after each matrix).

    `fleet deploy`, `fleet deploy-all` and `fleet promote` deploy it themselves unless given
    --no-gateway; the local target starts it with `fleet up`.
    """
    from modelfleet.cli.deploy_cmds import print_outcomes
    from modelfleet.gitinfo import deploy_tag
    from modelfleet.targets import get_target

    with user_errors():
        settings = load_settings()
        target = get_target(settings)
        # Deploys tagged with a commit refuse a dirty tree; the local target serves the tree as it is.
        tag = deploy_tag(settings.root, allow_dirty=allow_dirty) if target.requires_clean_tree else "local"
        outcome = target.deploy_gateway(tag=tag)
        if outcome is None:
            raise UserError(f"the {target.name} target starts its gateway with `fleet up`; nothing to deploy")
        print_outcomes([outcome], title=f"gateway ({target.name})")
        if outcome.result == "failed":
            raise typer.Exit(1)


def _proxy_headers() -> dict[str, str]:
    key, secret = os.environ.get("FLEET_PROXY_TOKEN_ID"), os.environ.get("FLEET_PROXY_TOKEN_SECRET")
    return {"Modal-Key": key, "Modal-Secret": secret} if key and secret else {}


def _shown(record: KeyRecord) -> dict[str, object]:
    """What may be shown about a key: never its secret or hash."""
    limits = record.limits
    return {
        "name": record.name,
        "key_id": record.key_id,
        "scope": record.scope,
        "models": list(limits.models) if limits.models is not None else None,
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "daily_tokens": limits.daily_tokens,
        "monthly_usd": limits.monthly_usd,
        "expires": limits.expires.isoformat() if limits.expires else None,
        "created": record.created,
        "revoked": record.revoked,
    }


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option}: {text!r} is not a day; use YYYY-MM-DD") from None
