"""A passing `fleet smoke` records a pass for the deploy it checked, in its environment; nothing else does.

The pass is what `fleet promote` asks of the environment it promotes from, so it must name
exactly the live deploy (version, spec hash, commit) and appear only when every check passed.
Runs the real CLI against the local target pointed at a scripted endpoint (as test_smoke_cli).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli.app import app
from modelfleet.passes import PASSES_FILE, PassBook, PassRecord
from modelfleet.settings import FleetSettings
from modelfleet.state import DeployRecord, FleetState, JsonFileStore, save_state_file
from modelfleet.targets.passes import pass_book
from tests.unit.test_smoke_cli import DEMO, endpoint  # noqa: F401  (the fixture)
from tests.unit.test_smoke_endpoint import FakeEndpoint

RECORD = DeployRecord(app=f"fleet-{DEMO}", spec_hash="abc123", spec={}, tag="0123456789ab", version="0123456789ab")


def _deployed(fleet_repo: Path) -> None:
    save_state_file(FleetState(models={DEMO: RECORD}), fleet_repo / ".fleet" / "deployed.json")


def test_a_passing_smoke_records_a_pass_of_the_live_deploy(endpoint: FakeEndpoint, fleet_repo: Path) -> None:  # noqa: F811
    _deployed(fleet_repo)

    done = CliRunner().invoke(app, ["smoke", DEMO, "--timeout", "10"])

    assert done.exit_code == 0, done.output
    passed = pass_book(FleetSettings()).of(DEMO, RECORD.version)
    assert passed is not None and passed.matches(RECORD) and passed.checks == ("smoke",)
    assert f"recorded: {DEMO} {RECORD.version} passed" in done.output


def test_a_failing_smoke_records_no_pass(endpoint: FakeEndpoint, fleet_repo: Path) -> None:  # noqa: F811
    _deployed(fleet_repo)
    endpoint.behaviour.auth = False  # an endpoint that lets anyone in fails the 401 check

    done = CliRunner().invoke(app, ["smoke", DEMO, "--timeout", "10"])

    assert done.exit_code == 1
    assert not (fleet_repo / ".fleet" / PASSES_FILE).exists()


def test_a_pass_of_another_deploy_of_the_same_version_does_not_match(tmp_path: Path) -> None:
    book = PassBook(_store(tmp_path))
    book.record(PassRecord.of(RECORD, model=DEMO, environment="staging", checks=("smoke",)))
    redeployed = RECORD.model_copy(update={"spec_hash": "def456"})

    found = book.of(DEMO, RECORD.version)

    assert found is not None and found.matches(RECORD) and not found.matches(redeployed)


def test_the_local_pass_file_is_per_environment(fleet_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_ENV", "prod")
    prod = FleetSettings()
    pass_book(prod).record(PassRecord.of(RECORD, model=DEMO, environment="prod", checks=("smoke",)))

    written = json.loads((prod.state_path / PASSES_FILE).read_text())
    assert prod.state_path == fleet_repo / ".fleet-prod" and list(written) == [f"passed/{DEMO}/{RECORD.version}"]
    assert pass_book(prod.for_environment("staging")).of(DEMO, RECORD.version) is None


def _store(folder: Path) -> JsonFileStore:
    return JsonFileStore(folder / PASSES_FILE)
