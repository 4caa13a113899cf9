"""The fleet deploys apps from its own process; Modal must receive exactly what ``modal deploy -m`` sends.

Why: ``fleet deploy`` no longer starts a ``modal deploy`` process per model; it builds each
app by executing the entry module in-process (``targets/modal/app_build.py``) and calls
``App.deploy``. A container finds its app by the recorded module and class name and
rebuilds it from the bundle in its image, so the definitions -- module name, class,
image layers (with the bundle), mounts, GPU/scaling/snapshot settings, the publish -- must be
those of the CLI. Both paths deploy the same bundle against one recorder here and the
requests are compared one by one, ids aside. Also: a hung deploy ends as a timeout.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message

from modelfleet.catalog import load_catalog
from modelfleet.settings import FleetSettings
from modelfleet.targets.modal.app_build import ENTRY_MODULE
from modelfleet.targets.modal.bundle import BUNDLE_ENV, make_bundle
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_latency import LatencyProfile
from tests.support.modal_api_target import REPO, create_workspace, drive, fleet_env

MODEL = "smollm2-135m"
# Requests that carry what the app IS (the container rebuilds it from these).
DEFINING_RPCS = (
    "ImageGetOrCreate",
    "MountGetOrCreate",
    "FunctionPrecreate",
    "FunctionCreate",
    "ClassCreate",
    "AppPublish",
)
# Object ids are minted per call; what they point at is compared through the other requests.
_IDS = re.compile(r"\b(im|mo|fu|ap|cs|ta|de)-[A-Za-z0-9]+\b")


def _normalized(request: Message) -> str:
    copy = type(request)()
    copy.CopyFrom(request)
    if copy.DESCRIPTOR.name == "AppPublishRequest":
        copy.ClearField("commit_info")  # git state of the moment; the shared tree may change between the two
    if copy.DESCRIPTOR.name == "MountGetOrCreateRequest":
        copy.ClearField("earliest_checked_at")  # when the client checked the blobs
        files = sorted(copy.files, key=lambda f: f.filename)  # hashed concurrently: any order
        for file in files:
            file.ClearField("sha256_hex")  # the same files, read seconds apart from a tree others edit
        copy.ClearField("files")
        copy.files.extend(files)
    return _IDS.sub(lambda m: f"{m.group(1)}-*", MessageToJson(copy, sort_keys=True))


def _defining(calls: list[tuple[str, Message]]) -> dict[str, Counter[str]]:
    return {rpc: Counter(_normalized(req) for name, req in calls if name == rpc) for rpc in DEFINING_RPCS}


def test_the_in_process_deploy_sends_what_modal_deploy_m_sends() -> None:
    settings = FleetSettings(root=REPO)
    catalog = load_catalog(settings)
    bundle = make_bundle(catalog.require(MODEL), catalog, settings)
    with ModalApiRecorder() as api:
        create_workspace(api)
        # Twice by the CLI, so both compared deploys are redeploys (a first one has no existing ids).
        marks = []
        for _ in range(2):
            marks.append(len(api.calls))
            cli = subprocess.run(
                [sys.executable, "-m", "modal", "deploy", "-m", ENTRY_MODULE,
                 "--name", bundle.app_name, "--env", "main", "--tag", "same-tag"],
                env={**fleet_env(api), BUNDLE_ENV: bundle.to_env()},
                cwd=REPO, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert cli.returncode == 0, cli.stderr[-2000:]
        after_cli = len(api.calls)

        (outcome,) = drive(api, "deploy", "same-tag", MODEL)

        assert (outcome["result"], outcome["version"]) == ("ok", "v3")
        by_cli, in_process = _defining(api.calls[marks[1] : after_cli]), _defining(api.calls[after_cli:])
        for rpc in DEFINING_RPCS:
            assert by_cli[rpc], f"the CLI deploy sent no {rpc}"
            assert in_process[rpc] == by_cli[rpc], f"{rpc} differs from modal deploy -m's"
        assert api.unimplemented == []
    (create,) = [req for name, req in api.calls[after_cli:] if name == "FunctionCreate"]
    definition = api.function_definition(create)
    # How the container finds the app: this module, this class, imported from the package.
    assert (definition.module_name, definition.implementation_name) == (ENTRY_MODULE, "Server.*")


_HUNG_DEPLOY = textwrap.dedent(
    """
    import asyncio
    from modelfleet.targets.modal.bundle import load_bundle
    from modelfleet.targets.modal.app_build import build_app
    from modelfleet.targets.modal.deploy import publish
    try:
        asyncio.run(publish(build_app(load_bundle()), "fleet-hung", "main", "t", timeout=1.0))
    except TimeoutError:
        print("timed out")
    """
)


def test_a_deploy_the_api_never_answers_is_cancelled_at_its_timeout(tmp_path: Path) -> None:
    profile = tmp_path / "slow.toml"
    profile.write_text("source = 'a publish that never comes back'\n[rpc_seconds]\nAppPublish = 600\n")
    settings = FleetSettings(root=REPO)
    catalog = load_catalog(settings)
    bundle = make_bundle(catalog.require(MODEL), catalog, settings)
    with ModalApiRecorder(latency=LatencyProfile.from_file(profile)) as api:
        create_workspace(api)
        done = subprocess.run(
            [sys.executable, "-c", _HUNG_DEPLOY],
            env={**fleet_env(api), BUNDLE_ENV: bundle.to_env()},
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.stdout.strip() == "timed out", done.stderr[-2000:]
        assert "fleet-hung" not in api.apps()  # never published
