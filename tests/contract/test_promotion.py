"""`fleet promote` with the real modal client against the loopback API, two Modal environments.

What Modal does that this relies on (modal.com/docs/guide/environments): each environment
has its own apps, secrets and Dicts, and lookups from an app default to its own environment;
``Volume.from_name(name, environment_name=...)`` resolves a volume in another one (modal
1.6.4 volume.py). The recorder scopes apps, volumes, secrets and Dicts by environment and
refuses a lookup of a volume that does not exist there, as Modal does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import REPO, TIMEOUT_S, fleet_env, run_driver

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m"
APP = f"fleet-{MODEL}"
# The repo's fleet.toml declares staging (fleet-staging) and prod (fleet-prod, promote_from =
# "staging"), and keeps the one weights volume in the Modal environment "main".
WEIGHTS_ENV = "main"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A one-model fleet with staging and prod, committed (a Modal deploy is tagged with a clean commit)."""
    tmp_path = tmp_path / "fleet"
    tmp_path.mkdir()
    shutil.copy(REPO / "fleet.toml", tmp_path / "fleet.toml")
    shutil.copytree(REPO / "volumes", tmp_path / "volumes")
    shutil.copytree(REPO / "models" / MODEL, tmp_path / "models" / MODEL)
    (tmp_path / ".gitignore").write_text(".fleet/\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "fleet")
    return tmp_path


@pytest.fixture
def api() -> Iterator[ModalApiRecorder]:
    """The weights volume exists once, in the environment both mount; nothing else exists yet."""
    with ModalApiRecorder() as recorder:
        recorder.create_volume("modelfleet-weights", WEIGHTS_ENV)
        yield recorder


def fleet(api: ModalApiRecorder, root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The `fleet` CLI as CI runs it, pointed at the recorder."""
    return subprocess.run(
        [sys.executable, "-m", "modelfleet", *args],
        # A token pair, so no proxy token is minted; the checks reach no web front here and
        # fail after --timeout.
        env={
            **fleet_env(api, root, **env),
            "CI": "1",
            "FLEET_PROXY_TOKEN_ID": "wk-test",
            "FLEET_PROXY_TOKEN_SECRET": "ws-test",
        },
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def drive_in(api: ModalApiRecorder, root: Path, environment: str, *args: str) -> object:
    done = run_driver(api, *args, root=root, env=fleet_env(api, root, FLEET_ENV=environment))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def deploy_to_staging(api: ModalApiRecorder, root: Path) -> dict[str, str]:
    """Deploy the checkout's commit to staging; staging's record."""
    head = git(root, "rev-parse", "--short=12", "HEAD")
    [outcome] = drive_in(api, root, "staging", "deploy", head)  # type: ignore[misc]
    assert outcome["result"] == "ok", outcome["detail"]
    return state_of(api, root, "staging")


def state_of(api: ModalApiRecorder, root: Path, environment: str) -> dict[str, str]:
    models = drive_in(api, root, environment, "state")["models"]  # type: ignore[index]
    return dict(models.get(MODEL, {}))


def record_staging_pass(api: ModalApiRecorder, root: Path) -> None:
    """What `fleet smoke` does when every check passes (targets/passes.record_pass), in staging."""
    code = (
        "from modelfleet.settings import FleetSettings; from modelfleet.targets import get_target;"
        "from modelfleet.targets.passes import record_pass;"
        f"print(record_pass(get_target(FleetSettings()), {MODEL!r}, ('smoke',)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=fleet_env(api, root, FLEET_ENV="staging"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0 and "version='v1'" in done.stdout, done.stderr


def apps_in(api: ModalApiRecorder, environment: str) -> list[str]:
    return sorted({a.name for a in api.all_apps().values() if a.environment == environment and a.name})


def commit_a_change(root: Path) -> None:
    """A second commit that changes the model's spec (its scale-down window)."""
    model_file = root / "models" / MODEL / "model.toml"
    model_file.write_text(model_file.read_text() + "\n# a reviewed change\n")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "change")


def test_a_promotion_of_a_version_staging_never_passed_is_refused_with_the_reason(
    api: ModalApiRecorder, root: Path
) -> None:
    staging = deploy_to_staging(api, root)

    done = fleet(api, root, "promote", MODEL, "--from", "staging", "--to", "prod", "--yes", "--timeout", "1")

    assert done.returncode == 1
    assert f"{MODEL} {staging['version']} in staging has no recorded pass" in done.stderr
    assert f"fleet smoke {MODEL} --env staging" in done.stderr and "Traceback" not in done.stderr
    assert apps_in(api, "fleet-prod") == []  # nothing was deployed to prod


def test_a_promotion_into_an_environment_that_takes_none_from_there_is_refused(
    api: ModalApiRecorder, root: Path
) -> None:
    done = fleet(api, root, "promote", MODEL, "--from", "prod", "--to", "staging", "--yes")

    assert done.returncode == 1
    assert "environments.staging.promote_from: staging cannot be promoted to from prod" in done.stderr


def test_a_promotion_deploys_to_prod_exactly_what_passed_in_staging_and_records_it(
    api: ModalApiRecorder, root: Path, tmp_path: Path
) -> None:
    staging = deploy_to_staging(api, root)
    record_staging_pass(api, root)
    outputs = tmp_path / "github-output"

    done = fleet(
        api,
        root,
        "promote",
        MODEL,
        "--from",
        "staging",
        "--to",
        "prod",
        "--yes",
        "--timeout",
        "1",
        "--github-output",
        str(outputs),
    )

    prod = state_of(api, root, "prod")
    assert prod, done.stdout + done.stderr
    # Same commit, same spec, same image definition; each environment has its own app.
    for key in ("tag", "spec_hash", "image", "spec"):
        assert prod[key] == staging[key], key
    assert staging["image"].startswith("sha256:")
    assert (prod["environment"], staging["environment"]) == ("prod", "staging")
    assert apps_in(api, "fleet-prod") == [APP] and apps_in(api, "fleet-staging") == [APP]
    # The plan table showed what goes: staging's version, commit and image beside prod's "not deployed".
    assert "promote smollm2-135m: staging -> prod" in done.stdout and staging["tag"][:12] in done.stdout
    # One weights volume: both apps looked it up in the environment that holds it, none was made elsewhere.
    lookups = [r for r in api.requests("VolumeGetOrCreate") if r.deployment_name == "modelfleet-weights"]
    assert lookups and {r.environment_name for r in lookups} == {WEIGHTS_ENV}
    assert "modelfleet-weights" not in api.volume_names("fleet-prod")
    # No web front here, so prod's post-deploy checks fail: the command says so and how to roll back prod.
    assert done.returncode == 1
    assert f"fleet rollback {MODEL} --env prod" in done.stderr and "staging is untouched" in done.stderr
    assert "deployed=true\nversion=v1\n" in outputs.read_text()
    code = (
        "from modelfleet.settings import FleetSettings; from modelfleet.passes import promotion_of;"
        "from modelfleet.targets.passes import pass_book;"
        f"print(promotion_of(pass_book(FleetSettings()), {MODEL!r}, 'v1').model_dump_json())"
    )
    read = subprocess.run(
        [sys.executable, "-c", code],
        env=fleet_env(api, root, FLEET_ENV="prod"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    promoted = json.loads(read.stdout.strip().splitlines()[-1])
    assert (promoted["from_environment"], promoted["from_version"], promoted["result"]) == ("staging", "v1", "failed")
    assert (promoted["tag"], promoted["image"]) == (staging["tag"], staging["image"])


def test_a_checkout_other_than_the_commit_that_passed_is_refused(api: ModalApiRecorder, root: Path) -> None:
    deploy_to_staging(api, root)
    record_staging_pass(api, root)
    commit_a_change(root)

    done = fleet(api, root, "promote", MODEL, "--from", "staging", "--to", "prod", "--yes", "--timeout", "1")

    assert done.returncode == 1 and "passed in staging at commit" in done.stderr
    assert apps_in(api, "fleet-prod") == []


def test_rolling_back_prod_leaves_staging_alone(api: ModalApiRecorder, root: Path) -> None:
    first = git(root, "rev-parse", "--short=12", "HEAD")
    deploy_to_staging(api, root)
    record_staging_pass(api, root)
    fleet(api, root, "promote", MODEL, "--from", "staging", "--to", "prod", "--yes", "--timeout", "1")
    commit_a_change(root)
    drive_in(api, root, "staging", "deploy", git(root, "rev-parse", "--short=12", "HEAD"))
    code = (
        "from modelfleet.settings import FleetSettings; from modelfleet.targets import get_target;"
        f"from modelfleet.targets.passes import record_pass; record_pass(get_target(FleetSettings()), {MODEL!r}, ('smoke',))"
    )
    subprocess.run([sys.executable, "-c", code], env=fleet_env(api, root, FLEET_ENV="staging"), cwd=REPO, check=True)
    fleet(api, root, "promote", MODEL, "--from", "staging", "--to", "prod", "--yes", "--timeout", "1")
    assert state_of(api, root, "prod")["version"] == "v2"

    done = fleet(api, root, "rollback", MODEL, "--env", "prod")

    assert done.returncode == 0, done.stderr
    assert "environment: prod (Modal environment fleet-prod)" in done.stderr
    prod, staging = state_of(api, root, "prod"), state_of(api, root, "staging")
    assert (prod["version"], prod["tag"]) == ("v3", first)
    assert (staging["version"], staging["tag"]) == ("v2", git(root, "rev-parse", "--short=12", "HEAD"))
    staging_app = next(a for a in api.all_apps().values() if a.environment == "fleet-staging" and a.name == APP)
    assert [d.version for d in staging_app.deployments] == [1, 2]
    assert [r.app_id for r in api.requests("AppRollback")] == [
        next(a.app_id for a in api.all_apps().values() if a.environment == "fleet-prod" and a.name == APP)
    ]
