"""The loopback Modal API's latency profile: off unless given, and a profile names only real RPCs.

Why: the deploy benchmark's figures rest on the profile, and a misspelt RPC name would be a
figure that silently never applies; tests must stay fast, so no recorder waits by default.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.modal_api import API_RPCS, ModalApiRecorder
from tests.support.modal_api_latency import DEFAULT_PROFILE, LatencyProfile, LatencyProfileError


def test_a_recorder_answers_without_latency_unless_given_a_profile() -> None:
    recorder = ModalApiRecorder()
    assert not recorder.latency.enabled
    assert recorder.latency.delay("AppPublish") == 0.0


def test_the_shipped_profile_names_only_rpcs_of_modals_api_and_says_where_its_figures_come_from() -> None:
    profile = LatencyProfile.from_file(DEFAULT_PROFILE, known_rpcs=API_RPCS)
    assert profile.enabled
    assert profile.delay("AppPublish") > profile.delay("AppGetByDeploymentName") > 0
    assert "published" in profile.source
    assert "https://" in DEFAULT_PROFILE.read_text()  # the sources are cited next to the figures


def test_a_misspelt_rpc_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[rpc_seconds]\nFunctionCreat = 1.0\n")
    with pytest.raises(LatencyProfileError, match=r"p.toml: rpc_seconds: \['FunctionCreat'\] are not RPCs"):
        LatencyProfile.from_file(path, known_rpcs=API_RPCS)


@pytest.mark.parametrize("value", ["-1", "'fast'", "true", "601"])
def test_a_delay_must_be_seconds_between_0_and_600(tmp_path: Path, value: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(f"default_seconds = {value}\n")
    with pytest.raises(LatencyProfileError, match=r"default_seconds: .* is not a number of seconds"):
        LatencyProfile.from_file(path)


def test_an_rpc_without_its_own_figure_takes_the_default(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("default_seconds = 0.25\n[rpc_seconds]\nAppPublish = 2\n")
    profile = LatencyProfile.from_file(path, known_rpcs=API_RPCS)
    assert (profile.delay("AppPublish"), profile.delay("ClassGet")) == (2.0, 0.25)
