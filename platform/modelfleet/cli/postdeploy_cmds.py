"""After a deploy: ``fleet snapshot``, ``fleet smoke``, ``fleet baseline``, ``fleet rollback``.

CI runs them as separate steps after ``fleet deploy``; each adds its part to the model's
report, and ``fleet report`` (``report_cmds``) prints the whole of it for the job summary. A rollback is
recorded the same way whether ``fleet rollback`` or ``fleet smoke --rollback-on-failure``
asked for it (:func:`roll_back`). Credentials: without ``FLEET_PROXY_TOKEN_ID`` /
``FLEET_PROXY_TOKEN_SECRET`` the target mints a token for this one command and deletes it
after, also when the command fails (on Modal a proxy token allowed in the fleet's
environment only, so CI keeps no long-lived token; locally one in the edge's token
store). A pair set in the environment is used as it is: the fallback where the CI's Modal
token may not manage proxy tokens.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.table import Table

from modelfleet.catalog import CatalogModel
from modelfleet.cli.common import UserError, console, err_console, load_settings_and_catalog, user_errors
from modelfleet.errors import FleetError
from modelfleet.postdeploy.baseline_key import baseline_key
from modelfleet.postdeploy.fingerprint import Fingerprint, compare
from modelfleet.postdeploy.gate import (
    Endpoint,
    greedy_answers,
    record_baseline,
    run_quality_gate,
    take_endpoint_fingerprint,
    tolerance_of,
)
from modelfleet.postdeploy.parts import SmokePart, SnapshotPart
from modelfleet.postdeploy.probe import probe_boot, read_boot
from modelfleet.postdeploy.report import record_rollback, report_book
from modelfleet.postdeploy.smoke import SmokeReport, run_smoke
from modelfleet.postdeploy.snapshot import DEFAULT_MAX_TRIES, SnapshotReport, build_snapshot
from modelfleet.runtime.tokens import Credentials
from modelfleet.settings import FleetSettings
from modelfleet.state import BaselineStore
from modelfleet.targets import get_target
from modelfleet.targets.base import DeployOutcome, Target
from modelfleet.targets.baselines import baseline_store
from modelfleet.targets.passes import record_pass

TOKEN_ID_ENV = "FLEET_PROXY_TOKEN_ID"
TOKEN_SECRET_ENV = "FLEET_PROXY_TOKEN_SECRET"
# Beyond the declared startup_timeout: the request's own time and Modal's scheduling.
PROBE_MARGIN_SECONDS = 120


def smoke(
    name: str = typer.Argument(help="Model folder name."),
    rollback_on_failure: bool = typer.Option(
        False, "--rollback-on-failure", help="Roll the model back to its previous version if a check fails."
    ),
    timeout: float | None = typer.Option(
        None,
        "--timeout",
        help="Seconds each check may wait in all, Modal's 303 redirects included "
        "(default: the model's startup_timeout + 120: the first request may meet a cold boot).",
    ),
    url: str | None = typer.Option(
        None, "--url", help="Check this endpoint instead of the live one (a candidate before it takes traffic)."
    ),
) -> None:
    """Check the deployed endpoint: serving (models, chat, streaming, 401, 404) and the quality gate of golden.toml.

    The quality gate asks the golden prompts and compares the logprob fingerprint with the
    baseline for this deploy's revision, dtype, quantization, GPU and vLLM version; the
    first deploy of a model records it (and says so).
    """
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        model = catalog.require(name)
        target = get_target(settings)
        endpoint = url or target.endpoint(model)
        limit = timeout or float(model.spec.scaling.startup_timeout + PROBE_MARGIN_SECONDS)
        with proxy_credentials(target, "smoke") as (credentials, source):
            part = smoke_and_gate(
                settings,
                model,
                endpoint,
                credentials,
                target=target.name,
                version=_version(target, model),
                timeout=limit,
            )
        _print_smoke(part)
        report_book(settings).add(model.name, part)
        if part.ok:
            console.print(f"smoke passed: {model.name} at {endpoint}", highlight=False)
            # The live deploy passed: what `fleet promote` asks of the environment it promotes
            # from (targets/passes.py). A --url candidate is not the live deploy: no pass.
            checks = ("smoke", "quality gate") if model.golden is not None else ("smoke",)
            passed = record_pass(target, model.name, checks) if url is None else None
            if passed is not None:
                console.print(f"recorded: {model.name} {passed.version} passed in {settings.environment_label}")
            return
        err_console.print(
            f"[red]smoke failed:[/red] {model.name} at {endpoint}: {len(part.failures)} of "
            f"{len(part.checks) + len(part.quality)} checks failed ({', '.join(c.name for c in part.failures)})"
            f"{_token_hint(part, source)}",
            highlight=False,
        )
        if rollback_on_failure:
            outcome = roll_back(target, model, None)
            style = {"ok": "green", "failed": "red"}.get(outcome.result, "yellow")
            where = f" to {outcome.version}" if outcome.version else ""
            why = f" ({outcome.detail})" if outcome.detail else ""
            err_console.print(
                f"rollback of {model.name}{where}: [{style}]{outcome.result}[/{style}]{why}", highlight=False
            )
        raise typer.Exit(1)


def smoke_and_gate(
    settings: FleetSettings,
    model: CatalogModel,
    url: str,
    credentials: Credentials,
    *,
    target: str,
    version: str,
    timeout: float,
    record_missing: bool = True,
    baselines: BaselineStore | None = None,
) -> SmokePart:
    """The serving checks and the quality gate against ``url``: the smoke part the report records.

    The one call for any endpoint -- the live one (``fleet smoke``) or a candidate that takes
    no traffic yet (staging before ``fleet promote``). ``baselines`` defaults to the
    target's store; pass another (production's) to gate a candidate against it.
    ``record_missing`` False never records a first baseline.
    """
    report = run_smoke(url, credentials, model.served_name, auth_required=not model.spec.auth.public, timeout=timeout)
    boot, boot_seconds = read_boot(url, credentials, timeout=timeout)
    key_slug, gate_seconds = "", None
    if model.golden is not None:
        key = baseline_key(model, target=target)
        started = time.monotonic()
        gate = run_quality_gate(
            Endpoint(url=url, served_name=model.served_name, timeout=timeout),
            credentials,
            model.golden,
            model=model.name,
            key=key,
            baselines=baselines or baseline_store(settings),
            version=version,
            record_missing=record_missing,
            model_folder=str(model.folder),
        )
        gate_seconds = round(time.monotonic() - started, 2)
        key_slug = key.slug()
        report = report.model_copy(update={"quality": gate.checks})
    return SmokePart.of(
        report,
        target=target,
        boot=boot,
        boot_seconds=boot_seconds,
        version=version,
        baseline_key=key_slug,
        gate_seconds=gate_seconds,
    )


def baseline(
    name: str = typer.Argument(help="Model folder name."),
    url: str | None = typer.Option(None, "--url", help="Fingerprint this endpoint instead of the live one."),
    yes: bool = typer.Option(False, "--yes", help="Record without asking (CI, after review)."),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Seconds each request may wait (default: the model's startup_timeout + 120)."
    ),
) -> None:
    """Record (or refresh) the model's quality baseline from the deployed endpoint: an explicit, reviewed step.

    Takes the logprob fingerprint of golden.toml's prompts and stores it for this deploy's
    revision, dtype, quantization, GPU and vLLM version; shows how it differs from the
    baseline it replaces (or the newest one of another key) before asking.
    """
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        model = catalog.require(name)
        if model.golden is None:
            raise UserError(f"models/{name}/golden.toml: (file): missing; `fleet baseline` fingerprints its prompts")
        target = get_target(settings)
        endpoint = url or target.endpoint(model)
        limit = timeout or float(model.spec.scaling.startup_timeout + PROBE_MARGIN_SECONDS)
        key = baseline_key(model, target=target.name)
        store = baseline_store(settings)
        with proxy_credentials(target, "baseline") as (credentials, _):
            fingerprint = take_endpoint_fingerprint(
                Endpoint(url=endpoint, served_name=model.served_name, timeout=limit), credentials, model.golden
            )
        previous = store.get(model.name, key) or next(iter(store.all(model.name)), None)
        tolerance = tolerance_of(model.golden)
        console.print(f"baseline key {key.slug()}: {key.model_dump()}", highlight=False)
        if previous is None:
            console.print("no baseline yet for this model", highlight=False)
        else:
            changed = ", ".join(previous.key.differences(key)) or "same key"
            result = compare(Fingerprint.model_validate(previous.fingerprint), fingerprint, tolerance)
            console.print(
                f"against the baseline of {previous.recorded_at} ({changed}): {result.detail}", highlight=False
            )
        if not yes and not typer.confirm("record this fingerprint as the baseline?", default=False):
            raise UserError("not recorded (answer yes, or pass --yes after reviewing)")
        record_baseline(store, model.name, key, fingerprint, version=_version(target, model), reason="fleet baseline")
        console.print(f"baseline recorded: {model.name} key {key.slug()}", highlight=False)


def rollback(
    name: str = typer.Argument(help="Model folder name."),
    to: str | None = typer.Option(
        None, "--to", help="Version to restore, e.g. v3 (default: the one before the live version)."
    ),
) -> None:
    """Serve an earlier version of a model again (on Modal: its app rollback, strategy recreate).

    The rollback is a new version on Modal; the fleet state then names that version with the
    spec of the version it restored. The local target keeps no versions: the command says
    so and exits 1. Either way the model's deploy report records what happened.
    """
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        model = catalog.require(name)
        outcome = roll_back(get_target(settings), model, to)
        if outcome.result != "ok":
            raise UserError(f"rollback of {name} {outcome.result}: {outcome.detail}")
        console.print(f"{outcome.app}: {outcome.detail}, now live as {outcome.version}", highlight=False)


def snapshot(
    name: str = typer.Argument(help="Model folder name."),
    tries: int = typer.Option(DEFAULT_MAX_TRIES, "--tries", min=1, max=20, help="Cold starts before giving up."),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Seconds one cold start may take (default: the model's startup_timeout + 120)."
    ),
) -> None:
    """Cause cold starts until one restores from the snapshot; record each one's time to first token."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        model = catalog.require(name)
        target = get_target(settings)
        url = target.endpoint(model)
        limit = timeout or float(model.spec.scaling.startup_timeout + PROBE_MARGIN_SECONDS)
        enabled = model.spec.snapshot.enabled and target.supports_snapshots
        with proxy_credentials(target, "snapshot") as (credentials, _):
            golden = model.golden
            endpoint = Endpoint(url=url, served_name=model.served_name, timeout=limit)
            report = build_snapshot(
                lambda: probe_boot(url, credentials, model.served_name, timeout=limit),
                lambda: target.force_cold_start(model),
                snapshots_enabled=enabled,
                max_tries=tries,
                answers=(lambda: greedy_answers(endpoint, credentials, golden)) if golden else None,
            )
        _print_snapshot(model.name, report, declared=model.spec.snapshot.enabled, target=target.name)
        part = SnapshotPart.of(report, target=target.name, version=_version(target, model))
        report_book(settings).add(model.name, part)
        if not report.ok:
            raise typer.Exit(1)


@contextmanager
def proxy_credentials(target: Target, purpose: str) -> Iterator[tuple[Credentials, str]]:
    """(credentials, where they came from): the env pair, else a token the target mints for this command."""
    key, secret = os.environ.get(TOKEN_ID_ENV, ""), os.environ.get(TOKEN_SECRET_ENV, "")
    if key and secret:
        yield Credentials(key, secret), "env"
        return
    if key or secret:
        missing = TOKEN_SECRET_ENV if key else TOKEN_ID_ENV
        raise UserError(f"{missing} is not set: set both {TOKEN_ID_ENV} and {TOKEN_SECRET_ENV}, or neither")
    try:
        minted = target.temporary_credentials(purpose)
        credentials = minted.__enter__()
    except FleetError as error:
        raise UserError(
            f"no proxy token: the {target.name} target cannot make one here ({error}); set {TOKEN_ID_ENV} and "
            f"{TOKEN_SECRET_ENV} (on Modal: `modal workspace proxy-tokens create --json`)"
        ) from None
    try:
        yield credentials, "temporary"
    finally:
        minted.__exit__(None, None, None)


def roll_back(target: Target, model: CatalogModel, to_version: str | None) -> DeployOutcome:
    """Ask the target to roll back and record the outcome in the model's deploy report, whatever it is.

    A FleetError (no earlier version, Modal unreachable) is a failed outcome, recorded like
    any other, so CI's report never shows "-" for a model whose rollback was attempted.
    """
    try:
        outcome = target.rollback(model, to_version)
    except FleetError as error:
        outcome = DeployOutcome(model.name, target.settings.app_name(model.name), "failed", 0.0, detail=str(error))
    record_rollback(target.settings, outcome, target=target.name)
    return outcome


def _version(target: Target, model: CatalogModel) -> str:
    """The deployed version, for the report; the report is still written when the state store cannot be read."""
    try:
        record = target.deployed_state().models.get(model.name)
    except Exception:  # the version only labels the report; an unreachable state store must not lose a result
        return ""
    return (record.version or record.tag) if record else ""


def _token_hint(report: SmokeReport, source: str) -> str:
    rejected = any("rejected" in c.detail for c in report.failures)
    if rejected and source == "env":
        return f"; the endpoint rejected the token from {TOKEN_ID_ENV} / {TOKEN_SECRET_ENV}: check both"
    return ""


def _print_smoke(report: SmokeReport) -> None:
    table = Table(title=f"smoke {report.served_name} ({report.url})")
    for column in ("check", "result", "seconds", "detail"):
        table.add_column(column)
    for check in (*report.checks, *report.quality):
        result = "[green]ok[/green]" if check.ok else "[red]FAILED[/red]"
        table.add_row(check.name, result, f"{check.seconds:.2f}", check.detail)
    console.print(table)


def _print_snapshot(model: str, report: SnapshotReport, *, declared: bool, target: str) -> None:
    table = Table(title=f"snapshot {model} ({target})")
    for column in ("try", "boot", "boot seconds", "first token", "error"):
        table.add_column(column)
    for entry in report.tries:
        table.add_row(
            str(entry.attempt),
            entry.boot,
            "-" if entry.boot_seconds is None else f"{entry.boot_seconds:.1f}",
            "-" if entry.ttft_seconds is None else f"{entry.ttft_seconds:.2f}s",
            entry.error,
        )
    console.print(table)
    if declared and not report.snapshots_enabled:
        console.print(f"the {target} target takes no snapshots: this was a plain cold start", highlight=False)
    if report.answers_match is not None:
        style = "green" if report.answers_match else "red"
        console.print(f"greedy answers: [{style}]{report.answers_detail}[/{style}]", highlight=False)
    message = {
        "restored": f"snapshot built: {model} restored on try {len(report.tries)}",
        "plain-cold-start": f"{model}: plain cold start measured (snapshots off)",
        "gave-up": f"no restore after {report.max_tries} cold starts: {model} has no snapshot yet",
        "failed": f"{model}: a cold start failed; see the error above",
    }[report.result]
    (console if report.ok else err_console).print(message, highlight=False)


def register(app: typer.Typer) -> None:
    """Add snapshot, smoke, baseline and rollback (``report_cmds`` adds report)."""
    app.command()(snapshot)
    app.command()(smoke)
    app.command()(baseline)
    app.command()(rollback)
