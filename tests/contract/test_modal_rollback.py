"""`fleet rollback` with the real modal client against the recorder's version history.

What Modal does (modal 1.6.4, modal/cli/app.py): a rollback is a new version that serves an
older definition, and its history row carries ``rollback_version``. After a rollback the
fleet state must name the version Modal serves (the history's newest row) with the spec that
version serves, and ``--strategy recreate`` must leave no container of the bad version.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelfleet.catalog import load_catalog
from modelfleet.settings import FleetSettings
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import REPO, TIMEOUT_S, create_workspace, drive, fleet_env, run_driver

FLEET = Path(sys.executable).parent / "fleet"
MODEL = "smollm2-135m"
APP = f"fleet-{MODEL}"
GOOD_GPUS = [("L4", 1), ("A10", 1)]
BAD_GPUS = [("A10", 1), ("L4", 1)]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fleet of one model whose folder a test can change between deploys."""
    shutil.copy(REPO / "fleet.toml", tmp_path / "fleet.toml")
    shutil.copytree(REPO / "volumes", tmp_path / "volumes")
    shutil.copytree(REPO / "models" / MODEL, tmp_path / "models" / MODEL)
    return tmp_path


@pytest.fixture
def api(root: Path) -> Iterator[ModalApiRecorder]:
    with ModalApiRecorder() as recorder:
        create_workspace(recorder, root)
        yield recorder


def fleet_cli(api: ModalApiRecorder, root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The `fleet` command as CI runs it, pointed at the recorder and the fleet at ``root``."""
    return subprocess.run(
        [str(FLEET), *args],
        env={**fleet_env(api, root), "CI": "1", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def make_bad(root: Path) -> None:
    """A spec change the bad version carries: the GPU order swapped."""
    model_file = root / "models" / MODEL / "model.toml"
    text = model_file.read_text()
    assert 'type = "L4"' in text and 'fallbacks = ["A10"]' in text
    model_file.write_text(
        text.replace('type = "L4"', 'type = "A10"').replace('fallbacks = ["A10"]', 'fallbacks = ["L4"]')
    )


def spec_of(root: Path) -> tuple[str, dict[str, object]]:
    model = load_catalog(FleetSettings(root=root)).require(MODEL)
    return model.spec_hash(), model.spec.model_dump(mode="json")


def served_gpus(api: ModalApiRecorder, root: Path) -> list[tuple[str, int]]:
    """The GPUs of the server class Modal serves now, looked up by name in a fresh client."""
    code = (
        "import modal; f = modal.Cls.from_name('fleet-smollm2-135m', 'Server')._get_class_service_function();"
        " import json; print(json.dumps(f.info().gpus))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=fleet_env(api, root), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr
    return [(str(t), int(n)) for t, n in json.loads(done.stdout.strip().splitlines()[-1])]


def deploy_good_then_bad(api: ModalApiRecorder, root: Path) -> tuple[str, dict[str, object]]:
    """v1 (good, commit-1) then v2 (bad, commit-2) with two running containers; v1's spec."""
    good = spec_of(root)
    assert drive(api, "deploy", "commit-1", root=root)[0]["version"] == "v1"
    make_bad(root)
    assert drive(api, "deploy", "commit-2", root=root)[0]["version"] == "v2"
    api.start_container(APP)
    api.start_container(APP)
    assert served_gpus(api, root) == BAD_GPUS
    return good


def test_rollback_without_a_version_serves_the_previous_one_and_records_it_under_the_new_version(
    api: ModalApiRecorder, root: Path
) -> None:
    good_hash, good_spec = deploy_good_then_bad(api, root)
    bad_containers = api.running_containers(APP)

    done = fleet_cli(api, root, "rollback", MODEL)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "rolled back to v1, now live as v3" in done.stdout
    (request,) = api.requests("AppRollback")
    assert request.version == 1  # chosen from the history before the rollback, sent explicitly
    last = api.apps()[APP].deployments[-1]
    assert (last.version, last.rollback_version, last.tag) == (3, 1, "commit-1")
    assert [row["version"] for row in drive(api, "history", MODEL, root=root)] == ["v3", "v2", "v1"]
    record = drive(api, "state", root=root)["models"][MODEL]
    assert (record["version"], record["tag"], record["spec_hash"]) == ("v3", "commit-1", good_hash)
    assert record["spec"] == good_spec
    # Lookups by name meet the restored definition, and no container of the bad version is left.
    assert served_gpus(api, root) == GOOD_GPUS
    assert sorted(r.task_id for r in api.requests("ContainerStop")) == sorted(bad_containers)
    assert api.running_containers(APP) == []
    assert api.unimplemented == []
    # CI's rollback step leaves its part in the model's deploy report.
    report = fleet_cli(api, root, "report", MODEL, "--json")
    assert report.returncode == 0, report.stderr
    part = json.loads(report.stdout)["models"][0]["parts"]["rollback"]
    assert (part["result"], part["to_version"], part["detail"]) == ("ok", "v3", "rolled back to v1")


def test_rollback_to_an_explicit_version_records_that_versions_spec(api: ModalApiRecorder, root: Path) -> None:
    good_hash, _ = deploy_good_then_bad(api, root)
    bad_hash, _ = spec_of(root)
    assert drive(api, "deploy", "commit-3", root=root)[0]["version"] == "v3"  # unchanged spec, new version

    outcome = drive(api, "rollback", MODEL, "v1", root=root)

    assert (outcome["result"], outcome["version"], outcome["detail"]) == ("ok", "v4", "rolled back to v1")
    assert api.requests("AppRollback")[-1].version == 1
    record = drive(api, "state", root=root)["models"][MODEL]
    assert (record["version"], record["tag"], record["spec_hash"]) == ("v4", "commit-1", good_hash)

    # Rolling back again without a version restores v3 (the one before v4), with v3's own spec.
    outcome = drive(api, "rollback", MODEL, root=root)

    assert (outcome["version"], outcome["detail"]) == ("v5", "rolled back to v3")
    assert api.apps()[APP].deployments[-1].rollback_version == 3
    record = drive(api, "state", root=root)["models"][MODEL]
    assert (record["version"], record["tag"], record["spec_hash"]) == ("v5", "commit-3", bad_hash)
    assert served_gpus(api, root) == BAD_GPUS


def test_rollback_to_a_version_the_fleet_never_recorded_names_it_with_an_unknown_spec(
    api: ModalApiRecorder, root: Path
) -> None:
    # v1 was deployed with another state Dict (another fleet, or before the fleet kept versions).
    other = fleet_env(api, root, FLEET_STATE_DICT="someone-elses-state")
    done = run_driver(api, "deploy", "commit-0", MODEL, root=root, env=other)
    assert done.returncode == 0, done.stderr
    make_bad(root)
    drive(api, "deploy", "commit-2", root=root)

    outcome = drive(api, "rollback", MODEL, "v1", root=root)

    assert (outcome["result"], outcome["version"]) == ("ok", "v3")
    record = drive(api, "state", root=root)["models"][MODEL]
    assert (record["version"], record["tag"], record["spec_hash"], record["spec"]) == ("v3", "commit-0", "", {})
    plan = fleet_cli(api, root, "plan", "--format", "json")
    assert plan.returncode == 0, plan.stderr
    assert [e["action"] for e in json.loads(plan.stdout)["entries"]] == ["update"]


def test_rollback_with_one_version_or_to_a_missing_version_fails_clearly(api: ModalApiRecorder, root: Path) -> None:
    drive(api, "deploy", "commit-1", root=root)

    alone = fleet_cli(api, root, "rollback", MODEL)
    missing = fleet_cli(api, root, "rollback", MODEL, "--to", "v7")

    assert alone.returncode == 1 and "fleet-smollm2-135m has no version before v1" in alone.stderr
    assert missing.returncode == 1
    assert "No version v7" in missing.stderr and "Traceback" not in missing.stderr
    assert fleet_cli(api, root, "rollback", MODEL, "--to", "latest").returncode == 1
    assert api.requests("AppRollback")[-1:] == [] or api.requests("AppRollback")[-1].version == 7
    assert drive(api, "state", root=root)["models"][MODEL]["version"] == "v1"
    # A rollback that could not even start is in the deploy report too, as smoke's would be.
    report = fleet_cli(api, root, "report", MODEL, "--json")
    assert report.returncode == 0, report.stderr
    part = json.loads(report.stdout)["models"][0]["parts"]["rollback"]
    assert part["result"] == "failed" and "latest" in part["detail"]


def test_rollback_on_the_local_target_is_a_clear_error(api: ModalApiRecorder, root: Path) -> None:
    calls_before = len(api.calls)

    done = fleet_cli(api, root, "rollback", MODEL, FLEET_TARGET="local")

    assert done.returncode == 1
    assert "rollback needs FLEET_TARGET=modal" in done.stderr
    assert len(api.calls) == calls_before


def test_a_rollback_whose_old_containers_do_not_stop_fails_but_the_state_names_what_modal_serves(
    api: ModalApiRecorder, root: Path
) -> None:
    good_hash, _ = deploy_good_then_bad(api, root)
    api.fail_container_stop("worker unreachable")

    done = fleet_cli(api, root, "rollback", MODEL)

    # Modal serves v3 (= v1) already; only the recreate step failed, and the exit code says so.
    assert done.returncode == 1
    assert "rolled back to v1, but not every old container stopped" in done.stderr
    assert "Traceback" not in done.stderr
    record = drive(api, "state", root=root)["models"][MODEL]
    assert (record["version"], record["spec_hash"]) == ("v3", good_hash)
    assert len(api.running_containers(APP)) == 2
