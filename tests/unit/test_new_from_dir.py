"""``fleet new --from-dir``: a local checkout read without the hub.

The checkouts are complete, real safetensors files (header + data, data all zeros) with tiny
shapes (``tests/support/checkpoints.TINY``), written by ``tests/support/checkpoints.py``; the
config.json is a Llama-layout one. ``HF_ENDPOINT`` points at a port nobody listens on, so any
hub call would fail the command.
"""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli.app import app
from tests.support.checkpoints import TINY, complete_file, data_bytes, decoder_tensors, llama_config, parameters

runner = CliRunner()
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_ENDPOINT at a closed port: a hub call fails instead of reaching anything."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_TOKEN", raising=False)


def _checkout(folder: Path) -> Path:
    folder.mkdir(parents=True)
    tensors = decoder_tensors(TINY)
    names = list(tensors)
    half = len(names) // 2
    (folder / "model-00001-of-00002.safetensors").write_bytes(complete_file({n: tensors[n] for n in names[:half]}))
    (folder / "model-00002-of-00002.safetensors").write_bytes(complete_file({n: tensors[n] for n in names[half:]}))
    (folder / "config.json").write_bytes(llama_config(TINY))
    return folder


def test_from_dir_reads_config_and_headers_and_serves_the_folder_itself(
    fleet_repo: Path, tmp_path: Path, no_hub: None
) -> None:
    checkout = _checkout(tmp_path / "checkout")
    result = runner.invoke(app, ["new", "tiny", "--from-dir", str(checkout)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    data = tomllib.loads((fleet_repo / "models/tiny/model.toml").read_text())
    weights = data["weights"]
    assert weights["source"] == "local" and weights["path"] == str(checkout.resolve())
    assert weights["params_billion"] == float(f"{parameters(decoder_tensors(TINY)) / 1e9:.3g}")
    assert weights["architecture"] == {"num_hidden_layers": 2, "num_key_value_heads": 2, "head_dim": 16}
    # The context defaults to the model's own limit when it is below 8192.
    assert data["vllm"]["max_model_len"] == TINY.max_positions
    mb = data_bytes(decoder_tensors(TINY)) / 1e6
    assert f"weights {mb:.1f} MB in 2 safetensors file(s) (BF16 {mb:.1f} MB)" in result.output
    assert runner.invoke(app, ["validate"]).exit_code == 0


def test_from_dir_of_a_hub_cache_snapshot_pins_the_commit_its_folder_is_named_after(
    fleet_repo: Path, tmp_path: Path, no_hub: None
) -> None:
    checkout = _checkout(tmp_path / "hub/models--acme--tiny/snapshots" / SHA)
    result = runner.invoke(app, ["new", "tiny", "--from-dir", str(checkout), "--hf", "acme/tiny"])
    assert result.exit_code == 0, result.output
    weights = tomllib.loads((fleet_repo / "models/tiny/model.toml").read_text())["weights"]
    assert (weights["source"], weights["repo"], weights["revision"]) == ("huggingface", "acme/tiny", SHA)


def test_from_dir_with_a_repo_but_no_known_commit_asks_for_the_commit(
    fleet_repo: Path, tmp_path: Path, no_hub: None
) -> None:
    checkout = _checkout(tmp_path / "clone")
    result = runner.invoke(app, ["new", "tiny", "--from-dir", str(checkout), "--hf", "acme/tiny"])
    assert result.exit_code == 1
    assert "--revision: " in result.output and "its commit is unknown" in result.output
    branch = runner.invoke(app, ["new", "tiny", "--from-dir", str(checkout), "--hf", "acme/tiny", "--revision", "main"])
    assert branch.exit_code == 1 and "a branch cannot be resolved without the hub" in branch.output
    assert not (fleet_repo / "models/tiny").exists()


def test_from_dir_refuses_a_truncated_safetensors_file_in_one_line(
    fleet_repo: Path, tmp_path: Path, no_hub: None
) -> None:
    checkout = _checkout(tmp_path / "checkout")
    shard = checkout / "model-00002-of-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:-10])
    result = runner.invoke(app, ["new", "tiny", "--from-dir", str(checkout)])
    assert result.exit_code == 1
    assert f"{shard}: the header declares" in result.output and "the file is truncated" in result.output
    assert not (fleet_repo / "models/tiny").exists()


def test_from_dir_without_config_json_names_what_is_missing(fleet_repo: Path, tmp_path: Path, no_hub: None) -> None:
    checkout = _checkout(tmp_path / "checkout")
    (checkout / "config.json").unlink()
    result = runner.invoke(app, ["new", "tiny", "--from-dir", str(checkout)])
    assert result.exit_code == 1
    assert f"--from-dir: {checkout} has no config.json" in result.output
