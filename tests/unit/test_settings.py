"""FleetSettings: which fleet.toml is read, and what it may say."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfleet.settings import FLEET_FILE, FleetSettings


def _fleet(folder: Path, toml: str) -> Path:
    folder.mkdir()
    (folder / FLEET_FILE).write_text(toml)
    return folder


def test_settings_read_the_fleet_toml_of_the_root_they_are_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha = _fleet(
        tmp_path / "alpha",
        'app_prefix = "alpha"\n[prices]\ndate = "2026-01-01"\nsource = "a"\n[prices.per_hour]\nT4 = 1.0\n',
    )
    beta = _fleet(tmp_path / "beta", 'app_prefix = "beta"\ndeploy_concurrency = 9\n')
    # The process's own fleet (FLEET_ROOT, or the current folder) is a third one: root= must win.
    elsewhere = _fleet(tmp_path / "elsewhere", 'app_prefix = "elsewhere"\n')
    monkeypatch.setenv("FLEET_ROOT", str(elsewhere))
    monkeypatch.chdir(elsewhere)
    for name in ("FLEET_APP_PREFIX", "FLEET_DEPLOY_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)

    first, second = FleetSettings(root=alpha), FleetSettings(root=beta)

    assert (first.root, first.app_prefix, first.prices.date) == (alpha, "alpha", "2026-01-01")
    assert (second.root, second.app_prefix, second.deploy_concurrency) == (beta, "beta", 9)
    assert FleetSettings().app_prefix == "elsewhere"


def test_a_root_without_fleet_toml_gets_the_built_in_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = _fleet(tmp_path / "elsewhere", 'app_prefix = "elsewhere"\n')
    monkeypatch.setenv("FLEET_ROOT", str(elsewhere))
    monkeypatch.delenv("FLEET_APP_PREFIX", raising=False)
    bare = tmp_path / "bare"
    bare.mkdir()
    assert FleetSettings(root=bare).app_prefix == "fleet"
