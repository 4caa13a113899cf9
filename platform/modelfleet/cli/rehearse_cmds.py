"""``fleet rehearse MODEL``: one model's Modal container lifecycle, run on this machine with real vLLM on CPU.

What it runs and why is in ``targets/modal/rehearsal``. The weights come from the local
target's seeded volume folder (``fleet seed`` with ``FLEET_TARGET=local``), the compile
cache goes to the local compile-cache folder; each stage prints with its seconds. Then
a smoke test at the container's port -- without Modal's proxy in front, so the auth
checks are the loopback front's (tests/e2e/test_rehearsal.py) and not run here. The exit
code is 0 only when the container served, the smoke test passed and the container
stopped cleanly (exit hooks run).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import httpx
import typer

from modelfleet.cli.common import console, err_console, load_settings_and_catalog, user_errors
from modelfleet.postdeploy.smoke import SmokeReport, run_smoke
from modelfleet.runtime.tokens import Credentials
from modelfleet.targets.modal.bundle import make_bundle
from modelfleet.targets.modal.rehearsal import RehearsalError, RehearsedContainer, plan_rehearsal
from modelfleet.volumes.layout import local_volume_root

# Beyond the model's startup_timeout: CPU vLLM starts slower than the GPU it is sized for.
READY_MARGIN_SECONDS = 300
SMOKE_TIMEOUT_SECONDS = 120.0
# Placeholders: nothing checks them at the container's port (Modal's proxy would, in front of it).
NO_PROXY_CREDENTIALS = Credentials("wk-rehearsal", "ws-rehearsal")


def rehearse(
    name: str = typer.Argument(help="Model folder name."),
    keep_serving: bool = typer.Option(
        False, "--keep-serving", help="After the smoke test, keep the container serving until Ctrl-C."
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Seconds until the container serves (default: the model's startup_timeout + 300)."
    ),
) -> None:
    """Rehearse the model's Modal container here: enter hooks, snapshot point, serving, smoke, exit hooks."""
    with user_errors():
        settings, catalog = load_settings_and_catalog()
        model = catalog.require(name)
        bundle = make_bundle(model, catalog, settings)
        plan = plan_rehearsal(
            bundle,
            weights_root=local_volume_root(settings, "weights").resolve(),
            cache_root=local_volume_root(settings, "compile-cache").resolve(),
            workdir=(settings.state_path / "rehearsal" / model.name).resolve(),
        )
        for note in plan.notes:
            console.print(note, highlight=False)
        limit = timeout or float(model.spec.scaling.startup_timeout + READY_MARGIN_SECONDS)
        started = time.monotonic()
        container = RehearsedContainer(plan, on_line=lambda line: console.print(line, highlight=False))
        passed = False
        with _stop_on_sigterm():
            try:
                container.start()
                url = container.wait_ready(limit)
                console.print(f"container serving at {url} ({time.monotonic() - started:.1f} s)", highlight=False)
                console.print(f"/health: {httpx.get(f'{url}/health', timeout=10).text}", highlight=False)
                report = run_smoke(
                    url, NO_PROXY_CREDENTIALS, model.served_name, auth_required=False, timeout=SMOKE_TIMEOUT_SECONDS
                )
                _print_checks(report)
                passed = report.ok
                if keep_serving:
                    _serve_until_interrupted(container, url)
            finally:
                code = container.stop()
        if code != 0:
            raise RehearsalError(f"the rehearsed container exited with code {code}\n{container.output_tail()}")
        if not passed:
            err_console.print(f"[red]rehearsal failed:[/red] {model.name}: the smoke test failed", highlight=False)
            raise typer.Exit(1)
        console.print(f"rehearsal passed: {model.name} ({time.monotonic() - started:.1f} s)", highlight=False)


def _print_checks(report: SmokeReport) -> None:
    for check in report.checks:
        # A passing check's detail may quote the model's answer: only a failure's reason is printed.
        result = "ok" if check.ok else f"FAILED: {check.detail}"
        console.print(f"smoke {check.name}: {result} ({check.seconds:.2f} s)", highlight=False)


def _serve_until_interrupted(container: RehearsedContainer, url: str) -> None:
    console.print(f"keeping {url} serving; Ctrl-C stops the container", highlight=False)
    try:
        while container.process is not None and container.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        return
    raise RehearsalError(f"the rehearsed container stopped by itself\n{container.output_tail()}")


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM stops the rehearsal as Ctrl-C does: the container's exit hooks still run."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(app: typer.Typer) -> None:
    """Add rehearse."""
    app.command()(rehearse)
