"""Deploy models as Modal apps, in parallel, each with the real ``modal deploy``.

One subprocess per model (``modal deploy -m modelfleet.targets.modal.entry --name
APP --env ENV --tag TAG``) with the model's bundle in its environment; at most
``deploy_concurrency`` at once. A failure -- a bad GPU name refused by Modal, a Secret
that does not exist, an image that does not build, the API going away -- ends that
model's deploy and is reported from the exit code with the client's last error line;
the others carry on.

What a deploy produced is read back through interfaces meant for programs, never
from the CLI's human output (modal 1.6.4's ``modal deploy`` has no ``--json``): the
new version from ``modal app history APP --json`` (newest first), the URL by
looking the deployed ``Server`` up with the SDK (``modal.Server.from_name(...)`` for a
Modal Server, ``modal.Cls.from_name(...)`` for the classic web endpoint; the same
lookup ``fleet status`` uses). Then the version is recorded in the fleet state Dict.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from modelfleet.settings import FleetSettings
from modelfleet.state import DeployRecord
from modelfleet.targets.base import DeployOutcome, OnEvent, Result
from modelfleet.targets.modal.app import SERVER_CLASS, WEB_METHOD
from modelfleet.targets.modal.bundle import BUNDLE_ENV, ModelBundle
from modelfleet.targets.modal.client import ModalCommandError, checked_json, run_modal

ENTRY_MODULE = "modelfleet.targets.modal.entry"
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
    done = run_modal(
        "deploy", "-m", ENTRY_MODULE, "--name", bundle.app_name, "--env", env, "--tag", tag,
        env={BUNDLE_ENV: bundle.to_env()},
        cwd=settings.root,
        timeout=DEPLOY_TIMEOUT,
    )  # fmt: skip
    if not done.ok:
        return outcome("failed", detail=done.reason())
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
