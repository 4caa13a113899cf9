"""How a model is served: the grace period for streams, egress, and the Modal primitive they choose."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from modelfleet.catalog import Catalog, load_catalog
from modelfleet.settings import FleetSettings
from modelfleet.targets.modal.primitive import primitive_reason, serving_primitive
from tests.unit.conftest import MINIMAL_MODEL
from tests.unit.test_spec_fields import _with

WriteModel = Callable[[str, str], Path]


def _load() -> Catalog:
    return load_catalog(FleetSettings())


def _messages(catalog: Catalog, level: str) -> list[str]:
    return [f"{p.field}: {p.message}" for p in catalog.problems if p.level == level]


def test_the_grace_period_defaults_to_the_request_timeout(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL)
    scaling = _load().require("tiny").spec.scaling
    assert scaling.exit_grace_period is None
    assert scaling.grace_seconds() == scaling.timeout == 600


def test_a_grace_period_over_modals_hour_is_refused_with_the_limit(write_model: WriteModel) -> None:
    write_model("tiny", _with("scaling", "exit_grace_period = 3601"))
    (message,) = _messages(_load(), "error")
    assert message.startswith("scaling.exit_grace_period: ") and "3600" in message


def test_a_grace_period_shorter_than_a_request_is_a_warning_with_both_numbers(write_model: WriteModel) -> None:
    write_model("tiny", _with("scaling", "exit_grace_period = 30"))
    catalog = _load()
    assert catalog.require("tiny").spec.scaling.grace_seconds() == 30
    (message,) = [m for m in _messages(catalog, "warning") if m.startswith("scaling.exit_grace_period")]
    assert "exit_grace_period (30 s) is shorter than timeout (600 s)" in message
    assert "raise it to 600" in message


def test_a_timeout_past_the_longest_grace_is_a_warning_by_default(write_model: WriteModel) -> None:
    write_model("tiny", _with("scaling", "timeout = 7200"))
    catalog = _load()
    assert catalog.require("tiny").spec.scaling.grace_seconds() == 3600
    (message,) = [m for m in _messages(catalog, "warning") if m.startswith("scaling.exit_grace_period")]
    assert "timeout (7200 s) is above the longest exit grace Modal allows (3600 s)" in message


def test_a_grace_as_long_as_the_timeout_is_not_warned_about(write_model: WriteModel) -> None:
    write_model("tiny", _with("scaling", "exit_grace_period = 600"))
    assert not [m for m in _messages(_load(), "warning") if m.startswith("scaling.exit_grace_period")]


def test_egress_is_blocked_by_default(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL)
    assert _load().require("tiny").spec.privacy.egress == "blocked"


def test_a_fleet_default_in_fleet_toml_sets_egress_for_every_model(write_model: WriteModel, tmp_path: Path) -> None:
    write_model("tiny", MINIMAL_MODEL)
    fleet_toml = tmp_path / "fleet.toml"
    fleet_toml.write_text(fleet_toml.read_text() + '\n[defaults.privacy]\negress = "allowed"\n')
    assert _load().require("tiny").spec.privacy.egress == "allowed"


def test_a_warm_blocked_model_is_told_it_gets_no_server_and_how_to_get_one(write_model: WriteModel) -> None:
    write_model("tiny", _with("scaling", "min_containers = 1"))
    (message,) = [m for m in _messages(_load(), "warning") if m.startswith("privacy.egress")]
    assert "min_containers = 1 would serve through a Modal Server" in message
    assert "block_network=True" in message and 'egress = "allowed"' in message


def test_a_scale_to_zero_blocked_model_gets_no_egress_warning(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL)
    assert not [m for m in _messages(_load(), "warning") if m.startswith("privacy.egress")]


def test_an_unknown_egress_value_is_refused(write_model: WriteModel) -> None:
    write_model("tiny", _with("privacy", 'egress = "open"'))
    (message,) = _messages(_load(), "error")
    assert message.startswith("privacy.egress: ")


@pytest.mark.parametrize(
    ("scaling", "privacy", "primitive"),
    [
        ("", "", "web_server"),  # scale to zero: only the classic endpoint holds a cold request
        ("min_containers = 1", "", "web_server"),  # blocked by default, and Servers take no block_network
        ("min_containers = 1", 'egress = "allowed"', "server"),
        ("min_containers = 1", 'egress = "blocked"', "web_server"),
        ("", 'egress = "allowed"', "web_server"),
    ],
)
def test_the_primitive_follows_the_spec(write_model: WriteModel, scaling: str, privacy: str, primitive: str) -> None:
    text = MINIMAL_MODEL
    if scaling:
        text = _with("scaling", scaling) if not privacy else _with("scaling", scaling) + f"\n[privacy]\n{privacy}\n"
    elif privacy:
        text = _with("privacy", privacy)
    write_model("tiny", text)
    spec = _load().require("tiny").spec
    assert serving_primitive(spec) == primitive
    reason = primitive_reason(spec)
    assert reason.startswith("Modal Server" if primitive == "server" else "classic web endpoint")
