"""`fleet promote`'s pieces that need no Modal: the refusals of check_promotion, and calling the post-deploy commands."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
import typer

from modelfleet.catalog import load_catalog
from modelfleet.cli.common import UserError
from modelfleet.cli.promote_cmds import _redeploy_gateway, run_command
from modelfleet.passes import PassBook, PassRecord
from modelfleet.promotion import PromotionRefused, check_promotion
from modelfleet.settings import FleetSettings
from modelfleet.state import DeployRecord, FleetState, JsonFileStore
from modelfleet.targets.base import DeployOutcome, Target
from tests.unit.conftest import REPO_ROOT

MODEL = "smollm2-135m"


def test_a_command_called_directly_gets_the_declared_defaults_of_the_options_not_given() -> None:
    seen: dict[str, object] = {}

    def command(
        name: str = typer.Argument(help="x"),
        url: str | None = typer.Option(None, "--url"),
        tries: int = typer.Option(5, "--tries"),
    ) -> None:
        seen.update(name=name, url=url, tries=tries)

    run_command(command, name="m", tries=2)

    assert seen == {"name": "m", "url": None, "tries": 2}  # not typer's OptionInfo for --url


@pytest.fixture
def settings() -> FleetSettings:
    return FleetSettings(root=REPO_ROOT)


def _check(settings: FleetSettings, tmp_path: Path, record: DeployRecord, *, passed: bool, checkout: str) -> None:
    model = load_catalog(settings).require(MODEL)
    book = PassBook(JsonFileStore(tmp_path / "passed.json"))
    if passed:
        book.record(PassRecord.of(record, model=MODEL, environment="staging", checks=("smoke",)))
    check_promotion(
        model,
        source=settings.for_environment("staging"),
        target=settings.for_environment("prod"),
        source_state=FleetState(models={MODEL: record}),
        source_passes=book,
        target_state=FleetState(),
        checkout=checkout,
    )


def test_a_spec_other_than_the_one_that_passed_is_refused(settings: FleetSettings, tmp_path: Path) -> None:
    record = DeployRecord(app="a", spec_hash="0" * 64, spec={}, tag="0123456789ab", version="v4")
    with pytest.raises(PromotionRefused, match=r"the effective spec here \(hash \w{12}\) is not the one that passed"):
        _check(settings, tmp_path, record, passed=True, checkout="0123456789ab")


def test_exactly_what_passed_is_promotable(settings: FleetSettings, tmp_path: Path) -> None:
    spec_hash = load_catalog(settings).require(MODEL).spec_hash()
    record = DeployRecord(app="a", spec_hash=spec_hash, spec={}, tag="0123456789ab", version="v4")
    _check(settings, tmp_path, record, passed=True, checkout="0123456789ab")
    with pytest.raises(PromotionRefused, match="v4 in staging has no recorded pass"):
        _check(settings, tmp_path / "other", record, passed=False, checkout="0123456789ab")


class _GatewayTarget:
    """The one verb ``_redeploy_gateway`` uses, answering a set outcome."""

    def __init__(self, outcome: DeployOutcome | None) -> None:
        self.outcome = outcome
        self.tags: list[str] = []

    def deploy_gateway(self, *, tag: str) -> DeployOutcome | None:
        self.tags.append(tag)
        return self.outcome


def test_a_promotion_redeploys_the_target_environments_gateway_with_the_promoted_commit() -> None:
    target = _GatewayTarget(DeployOutcome("(gateway)", "fleet-prod-gateway", "ok", 1.0, url="https://g"))
    _redeploy_gateway(cast(Target, target), MODEL, "prod", tag="0123456789ab")
    assert target.tags == ["0123456789ab"]


def test_a_gateway_that_fails_to_redeploy_after_a_promotion_says_the_model_serves_and_how_to_retry() -> None:
    target = _GatewayTarget(DeployOutcome("(gateway)", "fleet-prod-gateway", "failed", 1.0, detail="Error: boom"))
    with pytest.raises(UserError) as refused:
        _redeploy_gateway(cast(Target, target), MODEL, "prod", tag="0123456789ab")
    assert str(refused.value) == (
        f"{MODEL} is promoted and serving in prod, but prod's gateway did not redeploy: Error: boom; "
        "retry with `fleet gateway deploy --env prod`"
    )


def test_a_target_without_a_gateway_to_deploy_is_left_alone() -> None:
    target = _GatewayTarget(None)
    _redeploy_gateway(cast(Target, target), MODEL, "prod", tag="local")
    assert target.tags == ["local"]
