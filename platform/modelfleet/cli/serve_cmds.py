"""Everyday commands for a running fleet: up, down, status, logs, call, token, demo.

They go through the target like every other command; ``fleet token`` manages the
hashed token store the local edges check (on Modal, proxy tokens are made with
``modal workspace proxy-tokens create``, and the same headers work against both).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Literal

import typer
from rich.markup import escape
from rich.table import Table

from modelfleet.catalog import CatalogModel
from modelfleet.cli.common import UserError, console, load_settings_and_catalog, print_problems, user_errors
from modelfleet.cli.deploy_cmds import print_outcomes, run_deploy
from modelfleet.runtime.tokens import Credentials, TokenStore
from modelfleet.settings import FleetSettings
from modelfleet.targets import get_target

token_app = typer.Typer(help="Create, list and revoke the tokens local edges accept (hashes only are stored).")
DEMO_QUESTION = "What is the capital of France?"


def up(names: list[str] = typer.Argument(None, help="Models to start (default: every model allowed locally).")) -> None:
    """Seed and start models with their edges; running models with an unchanged spec are left alone."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        print_problems(catalog)
        models = [catalog.require(n) for n in names] if names else sorted(catalog.models.values(), key=lambda m: m.name)
        failed = run_deploy(settings, catalog, models, yes=True, allow_dirty=True, exit_on_failure=False)
        if not _print_gateway(get_target(settings)):
            failed = True
        if failed:
            raise typer.Exit(1)


def down(names: list[str] = typer.Argument(None, help="Models to stop (default: all).")) -> None:
    """Stop engines and edges; no process and no run state is left behind."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        models = [catalog.require(n) for n in names] if names else sorted(catalog.models.values(), key=lambda m: m.name)
        target = get_target(settings)
        print_outcomes(target.teardown(models), title=f"down ({target.name})")
        _print_gateway(target)


def _gateway_view(target: object) -> dict[str, Any] | None:
    """The local gateway as ``fleet status`` shows it: url, state, health, pid, the models it routes; None when none."""
    from modelfleet.targets.local import LocalTarget
    from modelfleet.targets.local.gateway_process import gateway_health

    run = target.gateway() if isinstance(target, LocalTarget) else None
    if run is None:
        return None
    health = gateway_health(run) if run.pid else "down"
    return {
        "url": run.url,
        "openai_base_url": f"{run.url}/v1",
        "state": "running" if health == "healthy" else ("failed" if run.last_error else health),
        "health": health,
        "pid": run.pid,
        "models": sorted(run.upstreams),
        "error": run.last_error,
    }


def _print_gateway(target: object) -> bool:
    """One line about the gateway after up/down; False when it should run and does not."""
    view = _gateway_view(target)
    if view is None:
        return True
    if view["error"] or view["health"] != "healthy":
        console.print(f"[red]gateway:[/red] {escape(view['error'] or view['health'])}", highlight=False)
        return False
    console.print(
        f"gateway: {view['openai_base_url']} -> {', '.join(view['models'])} (client keys: `fleet keys create NAME`)",
        highlight=False,
    )
    return True


def status(
    output: Literal["table", "json"] = typer.Option("table", "--format", "-f", help="Output format."),
) -> None:
    """Model, URL, pid, health, uptime, memory and restarts; and the fleet's gateway."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        target = get_target(settings)
        statuses = target.status(sorted(catalog.models.values(), key=lambda m: m.name))
        gateway = _gateway_view(target)
        if output == "json":
            models = [{"model": s.model, "url": s.url, "state": s.state, **s.detail} for s in statuses]
            typer.echo(json.dumps({"target": target.name, "models": models, "gateway": gateway}, indent=2))
            return
        table = Table(title=f"status ({target.name})")
        keys = sorted({k for s in statuses for k in s.detail if k != "error"})
        for column in ("model", "url", "state", *keys):
            table.add_column(column)
        for entry in statuses:
            table.add_row(entry.model, entry.url, entry.state, *(entry.detail.get(k, "") for k in keys))
        console.print(table)
        for entry in statuses:
            if entry.detail.get("error"):
                console.print(f"[yellow]{entry.model}:[/yellow] {escape(entry.detail['error'])}", highlight=False)
        if gateway is not None:
            console.print(
                f"gateway: {gateway['openai_base_url']} {gateway['state']} (pid {gateway['pid']}; "
                f"models {', '.join(gateway['models']) or '-'})",
                highlight=False,
            )
            if gateway["error"]:
                console.print(f"[yellow]gateway:[/yellow] {escape(gateway['error'])}", highlight=False)


def logs(
    name: str = typer.Argument(help="Model folder name."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
    lines: int = typer.Option(50, "--lines", "-n", help="How many lines of the end to show first."),
) -> None:
    """The model's supervisor and vLLM output."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        model = catalog.require(name)
        path: Path = get_target(settings).log_path(model)
        if not path.is_file():
            raise UserError(f"no log for {name} yet at {path}: start it with `fleet up {name}`")
        with path.open(errors="replace") as handle:
            for line in handle.readlines()[-lines:]:
                sys.stdout.write(line)
            sys.stdout.flush()
            while follow:
                line = handle.readline()
                if line:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                else:
                    time.sleep(0.3)


def call(
    name: str = typer.Argument(help="Model folder name."),
    prompt: str = typer.Argument(help="What to ask."),
    max_tokens: int = typer.Option(128, "--max-tokens", help="Longest answer."),
) -> None:
    """Ask a model through its authenticated endpoint and stream the answer."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        model = catalog.require(name)
        with _credentials(settings, model) as credentials:
            for chunk in stream_chat(
                get_target(settings).endpoint(model), credentials, model.served_name, prompt, max_tokens
            ):
                sys.stdout.write(chunk)
                sys.stdout.flush()
        sys.stdout.write("\n")


def demo(name: str = typer.Argument("smollm2-135m", help="The model to demonstrate.")) -> None:
    """Ask the running model a question -- through the fleet's gateway with a fresh client key where
    one runs (the local target), else through the model's edge with a token -- and show how to call it."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        model = catalog.require(name)
        target = get_target(settings)
        url = target.endpoint(model)
        gateway = _gateway_view(target)
        if gateway is not None and gateway["health"] == "healthy" and model.served_name in gateway["models"]:
            _demo_through_gateway(settings, gateway["openai_base_url"], model.served_name)
            return
        key, secret = _token_store(settings).create(f"demo-{int(time.time())}")
        credentials = Credentials(key, secret)
        answer = ask(url, credentials, model.served_name, DEMO_QUESTION)
        console.print(f"[bold]Q:[/bold] {DEMO_QUESTION}\n[bold]A:[/bold] {escape(answer)}\n", highlight=False)
        console.print(f"endpoint: {url}/v1  (OpenAI-compatible; model {model.served_name!r})", highlight=False)
        console.print(
            "token (shown once; `fleet token list` shows its name, `fleet token revoke` ends it):", highlight=False
        )
        console.print(f"  Modal-Key: {key}\n  Modal-Secret: {secret}", highlight=False)
        body = f'{{"model": "{model.served_name}", "messages": [{{"role": "user", "content": "Hello!"}}]}}'
        curl = (
            f"curl {url}/v1/chat/completions -H {shlex.quote('Modal-Key: ' + key)} "
            f"-H {shlex.quote('Modal-Secret: ' + secret)} -H 'Content-Type: application/json' -d {shlex.quote(body)}"
        )
        console.print(f"try it:\n  {curl}", highlight=False, soft_wrap=True)
        console.print("the fleet keeps running; stop it with `make down`", highlight=False)


def _demo_through_gateway(settings: FleetSettings, base_url: str, served_name: str) -> None:
    """A fresh client key (as ``fleet keys create``), the demo question through the gateway, the snippet to reuse."""
    from modelfleet.gateway.keys import KeyLimits, new_key
    from modelfleet.gateway.server import open_key_store

    record, key = new_key(f"demo-{int(time.time())}", KeyLimits())
    open_key_store(
        settings.gateway, settings.state_path, target=settings.target, modal_environment=settings.modal_environment
    ).add(record)
    answer = "".join(stream_openai_chat(base_url, key, served_name, DEMO_QUESTION, 64))
    console.print(f"[bold]Q:[/bold] {DEMO_QUESTION}\n[bold]A:[/bold] {escape(answer)}\n", highlight=False)
    console.print(f"gateway: {base_url}  (OpenAI-compatible; model {served_name!r})", highlight=False)
    console.print(
        f"client key {record.name!r} (shown once; `fleet keys list` shows it, `fleet keys revoke {record.name}` ends it, "
        "`fleet usage` counts it):",
        highlight=False,
    )
    console.print(f"  {key}", highlight=False)
    snippet = (
        "from openai import OpenAI\n"
        f"client = OpenAI(base_url={base_url!r}, api_key={key!r})\n"
        f"reply = client.chat.completions.create(model={served_name!r}, "
        'messages=[{"role": "user", "content": "Hello!"}])\n'
        "print(reply.choices[0].message.content)"
    )
    console.print("try it (python, pip install openai):", highlight=False)
    console.print(snippet, highlight=False, markup=False, soft_wrap=True)
    console.print("the fleet keeps running; stop it with `make down`", highlight=False)


def stream_openai_chat(base_url: str, key: str, served_name: str, prompt: str, max_tokens: int) -> Iterator[str]:
    """Yield the answer's text as it streams from ``base_url`` (stock OpenAI SDK, ``key`` as api_key).

    The gateway takes a client key; a model's own endpoint takes its proxy token (``stream_chat``).
    """
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key=key, max_retries=0)
    stream = client.chat.completions.create(
        model=served_name,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
    )
    for event in stream:
        if event.choices and event.choices[0].delta.content:
            yield event.choices[0].delta.content


@token_app.command("create")
def token_create(name: str = typer.Argument(help="A name to recognise the token by.")) -> None:
    """Create a key/secret pair; the secret is shown once and only its hash is stored."""
    with user_errors():
        settings, _ = load_settings_and_catalog()
        key, secret = _token_store(settings).create(name)
        console.print(f"Modal-Key: {key}\nModal-Secret: {secret}", highlight=False)
        console.print("store the secret now: it is not shown again", style="yellow")


@token_app.command("list")
def token_list() -> None:
    """Names, key ids and creation times (never secrets)."""
    with user_errors():
        settings, _ = load_settings_and_catalog()
        table = Table(title="tokens")
        for column in ("name", "key", "created"):
            table.add_column(column)
        for entry in _token_store(settings).list():
            table.add_row(entry.name, entry.key, entry.created)
        console.print(table)


@token_app.command("revoke")
def token_revoke(name: str = typer.Argument(help="The token's name.")) -> None:
    """Revoke a token: every edge rejects it from the next request on."""
    with user_errors():
        settings, _ = load_settings_and_catalog()
        _token_store(settings).revoke(name)
        console.print(f"revoked {name}")


def ask(url: str, credentials: Credentials, served_name: str, prompt: str, max_tokens: int = 64) -> str:
    """One chat completion through the official OpenAI SDK with the proxy token, at temperature 0."""
    return "".join(stream_chat(url, credentials, served_name, prompt, max_tokens))


def stream_chat(url: str, credentials: Credentials, served_name: str, prompt: str, max_tokens: int) -> Iterator[str]:
    """Yield the answer's text as it streams (same headers against local and Modal endpoints)."""
    # The token as api_key: the SDK sends it as Modal's one-header form, `Authorization: Bearer wk-....ws-...`.
    yield from stream_openai_chat(f"{url}/v1", credentials.api_key, served_name, prompt, max_tokens)


def _token_store(settings: FleetSettings) -> TokenStore:
    return TokenStore(settings.tokens_path)


def _credentials(settings: FleetSettings, model: CatalogModel) -> AbstractContextManager[Credentials]:
    """Credentials from FLEET_PROXY_TOKEN_ID/SECRET, else a one-command token from the target."""
    key, secret = os.environ.get("FLEET_PROXY_TOKEN_ID"), os.environ.get("FLEET_PROXY_TOKEN_SECRET")
    if key and secret:
        return nullcontext(Credentials(key, secret))
    del model
    return get_target(settings).temporary_credentials("call")


def register(app: typer.Typer) -> None:
    """Add up, down, status, logs, call, demo and the token group."""
    app.command()(up)
    app.command()(down)
    app.command()(status)
    app.command()(logs)
    app.command()(call)
    app.command()(demo)
    app.add_typer(token_app, name="token")
