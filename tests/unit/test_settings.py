"""FleetSettings: which fleet.toml is read, and what it may say."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from modelfleet.catalog import load_catalog
from modelfleet.cli.app import app
from modelfleet.settings import FLEET_FILE, FleetSettings, FleetTomlError
from modelfleet.spec.model import ModelSpec
from tests.unit.conftest import MINIMAL_MODEL, REPO_ROOT

WriteModel = Callable[[str, str], Path]
runner = CliRunner()


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


def test_a_typo_in_fleet_defaults_is_one_error_naming_fleet_toml(write_model: WriteModel, fleet_repo: Path) -> None:
    write_model("alpha", MINIMAL_MODEL)
    write_model("beta", MINIMAL_MODEL)
    with (fleet_repo / FLEET_FILE).open("a") as handle:
        handle.write('\n[defaults.image]\nvllm_versoin = "0.25.0"\n')
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 1
    line = "fleet.toml: defaults.image.vllm_versoin: unknown field 'vllm_versoin'; did you mean 'vllm_version'?"
    assert line in result.output
    assert result.output.count("vllm_versoin") == 2  # the line above, once, not once per model.toml
    assert "models/" not in result.output and "Traceback" not in result.output


def test_fleet_defaults_are_checked_like_model_toml_but_may_omit_required_fields(tmp_path: Path) -> None:
    fleet = _fleet(
        tmp_path / "fleet",
        "[defaults.vllm]\ngpu_memory_utilization = 0.85\n[defaults.gpu]\nfallbacks = ['V100']\n"
        "[defaults.weights]\nsource = 'pypi'\n",
    )
    with pytest.raises(FleetTomlError) as raised:
        FleetSettings(root=fleet)
    assert str(raised.value).splitlines() == [
        "fleet.toml: defaults.weights: the weights are per model (source, pinned revision); declare them in each "
        "model.toml",
        "fleet.toml: defaults.gpu.fallbacks: unknown GPU 'V100' in fallback 'V100'; known: T4, L4, A10, L40S, "
        "A100-40GB, A100-80GB, RTX-PRO-6000, H100, H200, B200",
    ]


def test_every_model_inherits_a_fleet_default_that_omits_required_fields(
    write_model: WriteModel, fleet_repo: Path
) -> None:
    with (fleet_repo / FLEET_FILE).open("a") as handle:
        handle.write("\n[defaults.vllm]\ngpu_memory_utilization = 0.85\n")
    write_model("alpha", MINIMAL_MODEL)
    write_model("beta", MINIMAL_MODEL.replace("max_num_seqs = 64", "max_num_seqs = 64\ngpu_memory_utilization = 0.8"))
    catalog = load_catalog(FleetSettings())
    assert catalog.errors == []
    assert catalog.require("alpha").spec.vllm.gpu_memory_utilization == 0.85
    assert catalog.require("beta").spec.vllm.gpu_memory_utilization == 0.8


def _leaves(table: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for key, value in table.items():
        path = f"{prefix}{key}"
        found += _leaves(value, f"{path}.") if isinstance(value, dict) else [(path, value)]
    return found


def _platform_default(path: str) -> Any:
    model: type[BaseModel] = ModelSpec
    *sections, name = path.split(".")
    for section in sections:
        annotation = model.model_fields[section].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel), path
        model = annotation
    return model.model_fields[name].get_default(call_default_factory=True)


def test_fleet_toml_sets_no_default_the_platform_already_has() -> None:
    # One place per default: spec/model.py holds the platform's; fleet.toml only what differs.
    defaults = tomllib.loads((REPO_ROOT / FLEET_FILE).read_text()).get("defaults", {})
    repeated = [path for path, value in _leaves(defaults) if value == _platform_default(path)]
    assert repeated == [], f"fleet.toml repeats spec/model.py's defaults: {repeated}"
