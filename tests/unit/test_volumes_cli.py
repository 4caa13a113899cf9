"""``fleet seed`` / ``verify`` / ``volumes`` / ``volumes prune`` on the local target, through the real CLI."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli.app import app

LOCAL_MODEL = """
[weights]
source = "local"
path = "checkpoint"
params_billion = 0.001

[gpu]
type = "L4"

[vllm]
max_model_len = 2048
max_num_seqs = 64
"""

runner = CliRunner()


@pytest.fixture
def local_model(write_model: Callable[[str, str], Path]) -> Path:
    """A model whose weights are a small checkpoint folder next to its model.toml."""
    folder = write_model("mine", LOCAL_MODEL).parent
    (folder / "checkpoint").mkdir()
    (folder / "checkpoint" / "config.json").write_text("{}")
    (folder / "checkpoint" / "model.safetensors").write_bytes(os.urandom(2048))
    return folder


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_seed_verify_and_list_a_model(local_model: Path) -> None:
    assert _run("verify", "mine")[0] == 1
    code, out = _run("volumes")
    assert code == 0 and "not seeded yet: mine (`fleet seed NAME`" in out

    code, out = _run("seed", "mine")
    assert code == 0, out
    assert "mine" in out and "ok" in out

    code, out = _run("seed", "mine")
    assert code == 0 and "already seeded, verified" in out

    code, out = _run("verify", "mine")
    assert code == 0 and "ok mine: 2 files" in out

    code, out = _run("volumes")
    assert code == 0
    assert "modelfleet-weights" in out and "local/mine" in out and "seeded" in out and "stale" not in out
    assert "not seeded yet" not in out


def test_verify_fails_on_a_damaged_file_and_names_it(local_model: Path, fleet_repo: Path) -> None:
    assert _run("seed", "mine")[0] == 0
    shard = next((fleet_repo / ".fleet" / "volumes").rglob("model.safetensors"))
    shard.write_bytes(bytes(2048))

    code, out = _run("verify", "mine")

    assert code == 1
    assert "failed mine: local/mine@" in out
    assert (
        "is not seeded on modelfleet-weights: 1 file(s) missing or damaged: model.safetensors; run `fleet seed mine`"
        in out
    )


def test_seed_needs_names_or_all() -> None:
    code, out = _run("seed")
    assert code == 1 and "name the models to act on, or pass --all" in out


def test_prune_asks_unless_yes_and_removes_only_stale_revisions(local_model: Path) -> None:
    assert _run("seed", "mine")[0] == 0
    (local_model / "checkpoint" / "model.safetensors").write_bytes(os.urandom(4096))  # a new revision
    assert _run("seed", "mine")[0] == 0

    code, out = _run("volumes", "prune")
    assert code == 1 and "pass --yes" in out  # no terminal here: never prune unasked

    code, out = _run("volumes", "prune", "--yes")
    assert code == 0 and "pruned 1 revision(s)" in out

    code, out = _run("volumes", "prune", "--yes")
    assert code == 0 and "nothing to prune" in out
    assert _run("verify", "mine")[0] == 0


def test_volume_folders_are_not_read_on_the_modal_target(local_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_TARGET", "modal")
    for command in (["verify", "mine"], ["volumes", "prune", "--yes"]):
        code, out = _run(*command)
        assert code == 1 and "reads the local volume folders" in out, out
        assert "modal volume ls modelfleet-weights" in out
    # The listing still shows the declared volumes, and says where the Modal Volume's contents are.
    code, out = _run("volumes")
    assert code == 0 and "declared volumes (target modal)" in out
    assert "list it with `modal volume ls modelfleet-weights --env" in out
