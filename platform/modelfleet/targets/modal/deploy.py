"""Deploy models as Modal apps, in parallel, through the modal SDK in this process.

Each model's app is built from its bundle by the very module ``modal deploy -m
modelfleet.targets.modal.entry`` imports (``app_build.build_app``: same definitions, so a
container rebuilds the same app) and published with ``App.deploy(name=APP,
environment_name=ENV, tag=TAG)`` -- the SDK call behind ``modal deploy`` (modal/app.py
``deploy`` -> modal/runner.py ``_deploy_app``). At most ``deploy_concurrency`` at once.
Why not a ``modal deploy`` process per model, as before: each spent ~1.2-1.5 CPU-seconds
importing modal, pydantic and the platform, so 50 models on two cores were bound by
process start-up; here those imports happen once (``bench/deploy_scale.py`` measures both).

A failure -- a bad GPU name refused by Modal, a Secret that does not exist, an image that
does not build, the API going away -- ends that model's deploy and is reported with the
line the CLI would have printed (``Error: <message>``, modal/__main__.py); the others
carry on. A deploy that hangs is cancelled after ``DEPLOY_TIMEOUT`` and reported as such.

What a deploy produced is read back through interfaces meant for programs, never
from the CLI's human output (modal 1.6.4's ``modal deploy`` has no ``--json``): the
new version from ``modal app history APP --json`` (newest first), the URL by
looking the deployed ``Server`` up with the SDK (``modal.Server.from_name(...)`` for a
Modal Server, ``modal.Cls.from_name(...)`` for the classic web endpoint; the same
lookup ``fleet status`` uses). Then the version is recorded in the fleet state Dict.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import modal

from modelfleet.settings import FleetSettings
from modelfleet.state import DeployRecord
from modelfleet.targets.base import DeployOutcome, OnEvent, Result
from modelfleet.targets.modal.app import SERVER_CLASS, WEB_METHOD
from modelfleet.targets.modal.app_build import AppBuildError, build_app
from modelfleet.targets.modal.bundle import ModelBundle
from modelfleet.targets.modal.client import ModalCommandError, checked_json

# The first deploy of a model builds its image (vLLM, CUDA libraries): tens of minutes.
DEPLOY_TIMEOUT = 3600.0

Recorder = Callable[[str, DeployRecord], None]


def deploy_all(
    bundles: list[ModelBundle],
    *,
    settings: FleetSettings,
    tag: str,
    record: Recorder,
    on_event: OnEvent,
) -> list[DeployOutcome]:
    """Deploy every bundle with bounded concurrency; outcomes in the order given."""
    for bundle in bundles:
        on_event(bundle.model, "queued", bundle.app_name)
    with ThreadPoolExecutor(max_workers=settings.deploy_concurrency, thread_name_prefix="modal-deploy") as pool:
        futures = [
            pool.submit(deploy_one, b, settings=settings, tag=tag, record=record, on_event=on_event) for b in bundles
        ]
        return [f.result() for f in futures]


def deploy_one(
    bundle: ModelBundle, *, settings: FleetSettings, tag: str, record: Recorder, on_event: OnEvent
) -> DeployOutcome:
    """Deploy one model's app; never raises for a failure of that model (it becomes the outcome)."""
    started = time.monotonic()

    def outcome(result: Result, *, version: str = "", url: str = "", detail: str = "") -> DeployOutcome:
        on_event(bundle.model, result, detail or version)
        return DeployOutcome(
            bundle.model, bundle.app_name, result, time.monotonic() - started, version=version, url=url, detail=detail
        )

    on_event(bundle.model, "deploying", f"building and deploying {bundle.app_name}")
    env = settings.modal_environment
    try:
        app = build_app(bundle)
        asyncio.run(publish(app, bundle.app_name, env, tag, timeout=DEPLOY_TIMEOUT))
    except AppBuildError as error:
        return outcome("failed", detail=str(error))
    except TimeoutError:
        return outcome("failed", detail=f"timed out after {DEPLOY_TIMEOUT:.0f}s")
    except Exception as error:  # the client's refusal of this model: that model's outcome, never the fleet's
        return outcome("failed", detail=client_error_line(error))
    on_event(bundle.model, "recording", "reading the new version and URL")
    url = ""
    try:
        version = latest_version(bundle.app_name, env)
        url = deployed_web_url(bundle.app_name, env)
        record(
            bundle.model,
            DeployRecord(
                app=bundle.app_name,
                spec_hash=bundle.spec_hash,
                spec=bundle.spec.model_dump(mode="json"),
                tag=tag,
                version=version,
            ),
        )
    except Exception as error:  # the app is live; only the bookkeeping failed, and that must be said
        return outcome("failed", url=url, detail=f"deployed, but the fleet state was not recorded: {error}")
    return outcome("ok", version=version, url=url)


async def publish(app: modal.App, app_name: str, environment: str, tag: str, *, timeout: float) -> None:
    """``app.deploy`` as ``modal deploy --name APP --env ENV --tag TAG`` calls it, cancelled after ``timeout``.

    ``.aio`` runs the SDK's coroutine on the client's own loop and is awaited from this
    thread's loop, so ``wait_for`` can cancel a hung deploy (the CLI path killed the process).
    """
    await asyncio.wait_for(app.deploy.aio(name=app_name, environment_name=environment, tag=tag), timeout)


def client_error_line(error: BaseException) -> str:
    """The line ``modal deploy`` printed for a failure: ``Error: <message>`` (plus its notes).

    modal/__main__.py prints ``str(exc)`` and ``Note: ...`` for any exception with a message
    (``OutputManager.print_error``); the fleet reported that line from the CLI's output before.
    """
    text = str(error).strip()
    if not text:
        return f"Error: {type(error).__name__}"
    notes = getattr(error, "__notes__", [])
    return f"Error: {text.splitlines()[-1]}" + (f" (Note: {' '.join(notes)})" if notes else "")


def latest_version(app_name: str, environment: str) -> str:
    """The app's live version (``v3``): the newest row of ``modal app history --json``."""
    rows = checked_json("app", "history", app_name, "--env", environment, "--json")
    if not rows:
        raise ModalCommandError(f"app {app_name} has no deployment history")
    return str(rows[0]["version"])


def deployed_web_url(app_name: str, environment: str) -> str:
    """The public URL of the deployed app's ``Server``, looked up by name with the SDK.

    The live version is a Modal Server or a classic web endpoint (``primitive.py``), and a
    rollback may have swapped one for the other, so the lookup asks for the Server first:
    ``modal.Server.from_name(app, name).get_url()`` (modal/_server.py; one URL per routing
    region, from ``FunctionGet``'s handle metadata), then the class method's URL,
    ``Cls.from_name(app, cls)().method.get_web_url()`` (modal/cls.py, modal/_functions.py
    ``get_web_url``; ClassGet + FunctionGet). Both ask the control plane, so they name what
    the live version serves.
    """
    import modal
    from modal.exception import NotFoundError

    url: str | None
    try:
        url = modal.Server.from_name(app_name, SERVER_CLASS, environment_name=environment).get_url()
    except NotFoundError:
        try:
            server = modal.Cls.from_name(app_name, SERVER_CLASS, environment_name=environment)
            url = getattr(server(), WEB_METHOD).get_web_url()
        except NotFoundError:
            raise ModalCommandError(f"{app_name} is not deployed in Modal environment {environment!r}") from None
    if not url:
        raise ModalCommandError(f"{app_name}: {SERVER_CLASS} has no web URL")
    return url.rstrip("/")
