"""The post-deploy HTTP paths against Modal's web front on loopback: 303s, proxy auth, temporary tokens.

The app is deployed with the real modal client to the loopback recorder; the front
(``ModalWebFront``) serves its web endpoint as Modal does -- proxy auth, containers that
boot on the first request, ``303 See Other`` after the (scaled) request limit. Inside
each front container runs the project's real edge; behind it, instead of vLLM, the
small scripted OpenAI endpoint of the smoke unit tests (no vLLM here: the e2e suite runs
the same paths against the real one, tests/e2e/test_postdeploy_modal.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from modelfleet.postdeploy import waiting
from modelfleet.postdeploy.probe import ProbeError, probe_boot, read_boot
from modelfleet.postdeploy.smoke import run_smoke
from modelfleet.postdeploy.snapshot import build_snapshot
from modelfleet.runtime.tokens import Credentials
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import REPO, TIMEOUT_S, create_workspace, drive, fleet_env, run_fleet
from tests.support.modal_web_front import FrontSettings, ModalWebFront
from tests.unit.test_smoke_endpoint import Behaviour, FakeEndpoint

MODEL = "smollm2-135m"
SERVED = MODEL  # the catalog's served name, which `fleet smoke` asks for
# Scaled down from Modal's 150 s; every boot (cold or restore) takes longer than one request may wait.
REQUEST_LIMIT = 0.4
BOOT = 1.0


@dataclass
class Deployed:
    """A deployed model behind the front, with a token allowed in its environment."""

    api: ModalApiRecorder
    front: ModalWebFront
    upstream: FakeEndpoint
    url: str
    credentials: Credentials


def mint_token(api: ModalApiRecorder, environment: str | None = None, name: str = "test") -> Credentials:
    """A proxy token made with the real client (``modal.Workspace...proxy_tokens``), allowed in ``environment``."""
    code = textwrap.dedent(
        f"""
        import json, modal
        tokens = modal.Workspace.from_context().proxy_tokens
        token = tokens.create(name={name!r})
        if {environment!r}:
            tokens.allow(token.token_id, {environment!r})
        print(json.dumps([token.token_id, token.token_secret]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=fleet_env(api), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr
    key, secret = json.loads(done.stdout.strip().splitlines()[-1])
    return Credentials(key, secret)


@pytest.fixture(scope="module")
def scripted_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fleet as `fleet smoke` reads it here, without the demo's golden.toml.

    The scripted endpoint answers the serving checks only; the quality gate is tested
    against real vLLM (tests/e2e/test_quality_gate.py, tests/e2e/test_postdeploy_modal.py).
    """
    root = tmp_path_factory.mktemp("fleet")
    shutil.copy(REPO / "fleet.toml", root / "fleet.toml")
    shutil.copytree(REPO / "models", root / "models")
    (root / "models" / MODEL / "golden.toml").unlink()
    return root


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    """One deploy for the module; each test stops the containers it needs cold."""
    with (
        FakeEndpoint(Behaviour(auth=False, served_names=[SERVED])) as upstream,
        ModalApiRecorder() as api,
        pytest.MonkeyPatch.context() as patch,
    ):
        # The client counts its 303 hops from Modal's limit; scale it with the front's, or a
        # boot slowed by a busy machine needs more hops than 60 s / 150 s allows.
        patch.setattr(waiting, "MODAL_REQUEST_LIMIT_SECONDS", REQUEST_LIMIT)
        create_workspace(api)
        settings = FrontSettings(
            upstream_url=upstream.url, request_limit=REQUEST_LIMIT, boot_seconds=BOOT, restore_seconds=BOOT
        )
        with ModalWebFront(api, settings) as front:
            drive(api, "deploy", "commit-1", MODEL)
            url = drive(api, "endpoint", MODEL)
            yield Deployed(api, front, upstream, url, mint_token(api, api.state.environment))


def stop_containers(deployed: Deployed) -> None:
    """What ``fleet snapshot`` does between tries, through the real CLI (``modal container stop``)."""
    drive(deployed.api, "stop-containers", MODEL)


def test_the_endpoint_url_is_the_front_and_a_cold_boot_answers_303_then_the_result(deployed: Deployed) -> None:
    assert deployed.url.startswith("http://127.0.0.1:")
    stop_containers(deployed)
    first = httpx.get(f"{deployed.url}/health", headers=deployed.credentials.headers(), timeout=30)
    assert first.status_code == 303
    location = first.headers["location"]
    assert "__modal_function_call_id=fc-" in location and location.startswith(f"{deployed.url}/health?")
    polled = httpx.get(location, headers=deployed.credentials.headers(), timeout=30, follow_redirects=True)
    assert polled.status_code == 200 and polled.json()["boot"] in ("cold", "restore")


def test_the_probe_follows_303s_while_the_snapshot_boot_outlasts_the_request_limit(deployed: Deployed) -> None:
    # Before the fix the probe treated the 303 as a failure and CI rolled back a good deploy.
    stop_containers(deployed)
    redirects = len(deployed.front.redirects)
    seen = probe_boot(deployed.url, deployed.credentials, SERVED, timeout=60)
    assert seen.boot in ("cold", "restore") and seen.ttft_seconds >= BOOT
    assert f"{deployed.url}/v1/chat/completions" in deployed.front.redirects[redirects:]


def test_the_snapshot_loop_through_the_front_ends_in_a_restore(deployed: Deployed) -> None:
    report = build_snapshot(
        lambda: probe_boot(deployed.url, deployed.credentials, SERVED, timeout=60),
        lambda: stop_containers(deployed),
        snapshots_enabled=True,
        max_tries=5,
    )
    assert report.result == "restored", report.model_dump()
    assert report.tries[-1].boot == "restore"


def test_smoke_passes_through_a_cold_boot_with_303s(deployed: Deployed) -> None:
    stop_containers(deployed)
    redirects = len(deployed.front.redirects)
    report = run_smoke(deployed.url, deployed.credentials, SERVED, timeout=60)
    assert report.ok, [(c.name, c.detail) for c in report.failures]
    assert deployed.front.redirects[redirects:], "the boot should have outlasted the request limit"


def test_the_openai_sdk_follows_modals_303_by_itself(deployed: Deployed) -> None:
    stop_containers(deployed)
    redirects = len(deployed.front.redirects)
    client = openai.OpenAI(base_url=f"{deployed.url}/v1", api_key=deployed.credentials.api_key, max_retries=0)
    stream = client.chat.completions.create(
        model=SERVED, messages=[{"role": "user", "content": "hi"}], max_tokens=8, stream=True
    )
    assert "".join(e.choices[0].delta.content or "" for e in stream if e.choices)
    assert f"{deployed.url}/v1/chat/completions" in deployed.front.redirects[redirects:]


def test_a_boot_that_outlasts_the_whole_wait_fails_with_the_wait_in_the_message(deployed: Deployed) -> None:
    stop_containers(deployed)
    # Two 303s (0.4 s each), then the last hop is cut to what is left of the 0.9 s.
    with pytest.raises(ProbeError, match=r"no token within 1s"):
        probe_boot(deployed.url, deployed.credentials, SERVED, timeout=0.9)


def test_the_boot_kind_is_unknown_when_its_wait_runs_out(deployed: Deployed) -> None:
    stop_containers(deployed)
    assert read_boot(deployed.url, deployed.credentials, timeout=0.2) == ("unknown", None)


def test_the_front_takes_either_proxy_auth_form_and_refuses_the_rest(deployed: Deployed) -> None:
    read_boot(deployed.url, deployed.credentials, timeout=30)  # a running container: answers come at once
    key, secret = deployed.credentials.key, deployed.credentials.secret
    health = f"{deployed.url}/health"
    assert httpx.get(health, headers={"Modal-Key": key, "Modal-Secret": secret}).status_code == 200
    assert httpx.get(health, headers={"Authorization": f"Bearer {key}.{secret}"}).status_code == 200
    assert httpx.get(health).status_code == 401
    assert httpx.get(health, headers={"Authorization": f"Bearer {key}.ws-wrong"}).status_code == 401
    assert httpx.get(health, headers={"Modal-Key": key}).status_code == 401


def test_a_token_allowed_in_another_environment_is_refused(deployed: Deployed) -> None:
    elsewhere = mint_token(deployed.api, "staging")
    unscoped = mint_token(deployed.api)
    health = f"{deployed.url}/health"
    assert httpx.get(health, headers=elsewhere.headers(), timeout=30).status_code == 401
    answer = httpx.get(health, headers=unscoped.headers(), timeout=30, follow_redirects=True)
    assert answer.status_code == 200


def test_a_smoke_run_mints_a_token_for_the_environment_uses_it_and_deletes_it(
    deployed: Deployed, scripted_root: Path
) -> None:
    api = deployed.api
    before = set(api.proxy_tokens)
    creates = len(api.requests("WebhookTokenCreate"))
    done = run_fleet(api, "smoke", MODEL, "--timeout", "60", root=scripted_root)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    (create,) = api.requests("WebhookTokenCreate")[creates:]
    assert create.name.startswith(f"fleet-temporary-smoke-{api.state.environment}-")
    (allow,) = [r for r in api.requests("WebhookTokenEnvironmentAdd") if r.token_id not in before]
    assert allow.environment_id == f"en-{api.state.environment}"
    assert [r.token_id for r in api.requests("WebhookTokenDelete")][-1] == allow.token_id
    assert set(api.proxy_tokens) == before


def test_a_new_temporary_token_first_deletes_the_fleets_tokens_a_killed_job_left(
    deployed: Deployed, scripted_root: Path
) -> None:
    api = deployed.api
    left = mint_token(api, name="fleet-temporary-smoke-main-20261201T000000Z")
    foreign = mint_token(api, name="production-webhooks")
    fresh = mint_token(api, name="fleet-temporary-snapshot-main-20261202T000000Z")
    with api._lock:
        for token in (left, foreign):
            api.proxy_tokens[token.key].created_at -= 8 * 3600  # older than any job runs
    done = run_fleet(api, "smoke", MODEL, "--timeout", "60", root=scripted_root)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert left.key not in api.proxy_tokens
    assert {foreign.key, fresh.key} <= set(api.proxy_tokens)  # not the fleet's, or a live job's


def test_a_failing_smoke_still_deletes_its_token(deployed: Deployed, scripted_root: Path) -> None:
    api = deployed.api
    before = set(api.proxy_tokens)
    deployed.upstream.behaviour.served_names = ["someone-else"]
    try:
        done = run_fleet(api, "smoke", MODEL, "--timeout", "60", root=scripted_root)
    finally:
        deployed.upstream.behaviour.served_names = [SERVED]
    assert done.returncode == 1 and "models lists the served name" in done.stderr
    assert api.requests("WebhookTokenDelete")[-1].token_id not in before
    assert set(api.proxy_tokens) == before


def test_with_snapshots_off_every_boot_is_cold(tmp_path: Path) -> None:
    # Modal takes a snapshot only of a definition with enable_memory_snapshot (checkpointing_enabled).
    root = tmp_path / "fleet"
    for folder in ("models", "volumes"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copy(REPO / "fleet.toml", root / "fleet.toml")
    toml = root / "models" / MODEL / "model.toml"
    toml.write_text(toml.read_text() + "\n[snapshot]\nenabled = false\ngpu_snapshot = false\n")
    with FakeEndpoint(Behaviour(auth=False, served_names=[SERVED])) as upstream, ModalApiRecorder() as api:
        create_workspace(api, root)
        with ModalWebFront(api, FrontSettings(upstream_url=upstream.url, request_limit=5.0)) as front:
            drive(api, "deploy", "commit-1", MODEL, root=root)
            url = drive(api, "endpoint", MODEL, root=root)
            credentials = mint_token(api, api.state.environment)
            kinds = []
            for _ in range(2):
                drive(api, "stop-containers", MODEL, root=root)
                kinds.append(read_boot(url, credentials, timeout=30)[0])
    assert kinds == ["cold", "cold"]
    assert [b.kind for b in front.boots] == ["cold", "cold"]
