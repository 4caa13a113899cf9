"""Fixtures for the fast unit tests: a throwaway fleet repo with the real fleet.toml."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

MINIMAL_MODEL = """
[weights]
source = "huggingface"
repo = "org/tiny"
revision = "0123456789abcdef0123456789abcdef01234567"
params_billion = 8.0
architecture = { num_hidden_layers = 32, num_key_value_heads = 8, head_dim = 128 }

[gpu]
type = "H100"

[vllm]
max_model_len = 8192
max_num_seqs = 64
"""


@pytest.fixture
def fleet_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty fleet repo (real fleet.toml and volumes/) that FleetSettings finds via FLEET_ROOT."""
    shutil.copy(REPO_ROOT / "fleet.toml", tmp_path / "fleet.toml")
    shutil.copytree(REPO_ROOT / "volumes", tmp_path / "volumes")
    (tmp_path / "models").mkdir()
    monkeypatch.setenv("FLEET_ROOT", str(tmp_path))
    for name in ("FLEET_TARGET", "FLEET_APP_PREFIX", "FLEET_DEPLOY_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def write_model(fleet_repo: Path) -> Callable[[str, str], Path]:
    """Write ``models/<name>/model.toml`` with the given text; returns the file."""

    def write(name: str, text: str = MINIMAL_MODEL) -> Path:
        folder = fleet_repo / "models" / name
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / "model.toml"
        file.write_text(text)
        return file

    return write
