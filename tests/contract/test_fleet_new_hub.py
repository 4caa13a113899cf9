"""``fleet new --hf`` against the loopback hub, through the real ``huggingface_hub`` client.

The repos are synthetic (``tests/support/checkpoints.py``): config.json as transformers writes it
and safetensors headers with the real tensor names and shapes of an 8B Llama, an FP8 variant, a
Qwen2.5-VL-like vision model and an oversized model; the hub stores only those headers
(``HeaderOnly`` shards) and refuses to serve more than 1 MiB past them, so every test here also
shows that ``fleet new`` reads headers and never the weights. The GPU prices are the repo's own
fleet.toml.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.catalog import load_catalog
from modelfleet.cli.app import app
from modelfleet.settings import FleetSettings
from tests.support.checkpoints import (
    LLAMA_8B,
    Shape,
    decoder_tensors,
    llama_config,
    sharded_header_only,
    vision_tensors,
)
from tests.support.hf_hub import HeaderOnly, LoopbackHub
from tests.unit.test_model_folders import ENDING_SECTIONS, _python_blocks, _sections

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hf_test_token_with_access"
runner = CliRunner()

FP8_QUANT = {"quant_method": "fp8", "activation_scheme": "static"}
# 1.2 T parameters in bf16 (2.4 TB): more than 8 x B200 (8 x 180 GB x 0.90 = 1296 GB) can hold.
HUGE = Shape(layers=96, hidden=25600, intermediate=160000, heads=160, kv_heads=16, vocab=256000)


def _repo_files(
    shape: Shape, *, shards: int, config: bytes, linear_dtype: str = "BF16", fp8_scales: bool = False
) -> dict[str, bytes | HeaderOnly]:
    tensors = decoder_tensors(shape, linear_dtype=linear_dtype, fp8_scales=fp8_scales)
    files = sharded_header_only(tensors, shards)
    files["config.json"] = config
    files["tokenizer_config.json"] = b"{}"
    return files


def _vision_repo() -> dict[str, bytes | HeaderOnly]:
    """Qwen2.5-VL-7B's layout, abridged: a 28-layer decoder with 4 KV heads and a 32-block vision tower."""
    shape = Shape(layers=28, hidden=3584, intermediate=18944, heads=28, kv_heads=4, vocab=152064, max_positions=128000)
    tensors = {**decoder_tensors(shape), **vision_tensors(depth=32, hidden=1280, out=3584)}
    config = json.loads(llama_config(shape))
    config.update(
        architectures=["Qwen2_5_VLForConditionalGeneration"],
        model_type="qwen2_5_vl",
        vision_config={"depth": 32, "hidden_size": 1280, "out_hidden_size": 3584},
        image_token_id=151655,
        video_token_id=151656,
    )
    files = sharded_header_only(tensors, 5)
    files["config.json"] = json.dumps(config).encode()
    return files


@pytest.fixture(scope="module")
def hub() -> Iterator[LoopbackHub]:
    """One loopback hub holding every fixture repo (only the accepted token may read gated files)."""
    with LoopbackHub(accepted_tokens=[TOKEN]) as server:
        server.add_repo("acme/dense-8b", _repo_files(LLAMA_8B, shards=4, config=llama_config(LLAMA_8B)))
        server.add_repo(
            "acme/dense-8b-fp8",
            _repo_files(
                LLAMA_8B,
                shards=2,
                config=llama_config(LLAMA_8B, extra={"quantization_config": FP8_QUANT}),
                linear_dtype="F8_E4M3",
                fp8_scales=True,
            ),
        )
        server.add_repo(
            "meta/gated-8b",
            _repo_files(LLAMA_8B, shards=2, config=llama_config(LLAMA_8B)),
            gated=True,
        )
        server.add_repo("acme/private-8b", _repo_files(LLAMA_8B, shards=2, config=llama_config(LLAMA_8B)), private=True)
        server.add_repo("acme/vl-7b", _vision_repo())
        server.add_repo("acme/huge", _repo_files(HUGE, shards=8, config=llama_config(HUGE)))
        short = Shape(**{**LLAMA_8B.__dict__, "max_positions": 8192})
        server.add_repo("acme/moving", _repo_files(LLAMA_8B, shards=1, config=llama_config(short)))
        server.add_repo("acme/moving", _repo_files(LLAMA_8B, shards=1, config=llama_config(LLAMA_8B)), ref="dev")
        yield server


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub: LoopbackHub) -> Path:
    """An empty fleet repo with the real fleet.toml, pointed at the loopback hub, without HF_TOKEN."""
    shutil.copy(REPO_ROOT / "fleet.toml", tmp_path / "fleet.toml")
    shutil.copytree(REPO_ROOT / "volumes", tmp_path / "volumes")
    (tmp_path / "models").mkdir()
    monkeypatch.setenv("FLEET_ROOT", str(tmp_path))
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("FLEET_TARGET", "FLEET_APP_PREFIX", "FLEET_DEPLOY_CONCURRENCY", "HF_TOKEN", "FLEET_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _toml(fleet: Path, name: str) -> dict[str, object]:
    return tomllib.loads((fleet / "models" / name / "model.toml").read_text())


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def _assert_like_every_model_folder(fleet: Path, name: str) -> None:
    """The shape tests/unit/test_model_folders.py requires of models/*/, checked on a folder fleet new wrote."""
    folder = fleet / "models" / name
    settings = FleetSettings(root=fleet)
    spec = load_catalog(settings).require(name).spec
    assert (folder / "model.toml").read_text().splitlines()[0] == "#:schema ../model.schema.json"
    readme = (folder / "README.md").read_text()
    sections = _sections(readme)
    assert tuple(heading for heading, _ in sections[-3:]) == ENDING_SECTIONS
    body = dict(sections)
    snippets = [code for code in _python_blocks(body["Call it"]) if "from openai import OpenAI" in code]
    assert snippets and all(f'model="{name}"' in code and "base_url=" in code for code in snippets)
    floor = spec.scaling.min_containers * spec.gpu.count * settings.prices.per_hour.get(spec.gpu.type, 0.0)
    quoted = re.search(r"floor[^$]*\$([\d,]+\.\d\d)/h", body["Idle floor"])
    assert quoted and quoted.group(1) == f"{floor:,.2f}"
    assert "fleet cost" in body["Idle floor"] and settings.prices.date in body["Idle floor"]
    # No cold-start figure that nobody measured.
    assert "Not measured" in body["Cold start"] and not re.search(r"\d+(\.\d+)? ?s\b", body["Cold start"])


def test_dense_model_gets_the_cheapest_gpu_that_fits_and_a_folder_that_validates(fleet: Path, hub: LoopbackHub) -> None:
    hub.clear_requests()
    result = runner.invoke(app, ["new", "dense", "--hf", "acme/dense-8b"])
    assert result.exit_code == 0, result.output
    data = _toml(fleet, "dense")
    weights, gpu = data["weights"], data["gpu"]
    assert isinstance(weights, dict) and isinstance(gpu, dict)
    assert weights["params_billion"] == 8.03 and weights["dtype"] == "bfloat16"
    assert weights["architecture"] == {"num_hidden_layers": 32, "num_key_value_heads": 8, "head_dim": 128}
    # 16.1 GB + 8 x 8192 tokens x 128 KB = 8.6 GB of KV cache + 1.5 GB per GPU: one L4 (21.6 GB usable) is
    # short, two L4 ($1.60/h) are the cheapest fit, cheaper than one L40S ($1.95/h); T4 has no bf16.
    assert (gpu["type"], gpu["count"], gpu["fallbacks"]) == ("L4", 2, ["A10:2", "L40S:2"])
    assert "L4:2 wins: the cheapest option that fits, $1.60/h" in result.output
    assert "T4: no bf16 on T4" in result.output and "--gpu L40S to prefer it" in result.output
    for row in ("L40S", "H100", "B200"):
        assert re.search(rf"\b{row}\b.*fits", result.output), row
    assert data["vllm"] == {"max_model_len": 8192, "max_num_seqs": 8}
    assert runner.invoke(app, ["validate"]).exit_code == 0
    _assert_like_every_model_folder(fleet, "dense")
    # Headers only: every read of a weights shard was a ranged GET.
    shard_gets = [r for r in hub.requests if r.method == "GET" and (r.file_path or "").endswith(".safetensors")]
    assert len(shard_gets) == 4 and all(r.headers.get("range") == "bytes=0-100000" for r in shard_gets)
    # and none was refused for reading past a header (the hub answers 500 to that).
    assert all(r.status != 500 for r in hub.requests)


def test_fp8_model_is_sized_from_its_header_bytes(fleet: Path) -> None:
    result = runner.invoke(app, ["new", "fp8", "--hf", "acme/dense-8b-fp8"])
    assert result.exit_code == 0, result.output
    data = _toml(fleet, "fp8")
    weights, gpu = data["weights"], data["gpu"]
    assert isinstance(weights, dict) and isinstance(gpu, dict)
    assert weights["dtype"] == "fp8" and weights["params_billion"] == 8.03
    # The headers hold 9.1 GB (FP8 linears + bf16 embeddings and lm_head), more than 8.03 B x 1 byte: the
    # fit uses the 9.1 GB, and one L4 holds it with the 8.6 GB of KV cache.
    assert "weights 9.1 GB in 2 safetensors file(s) (F8_E4M3 7.0 GB, BF16 2.1 GB" in result.output
    assert "FP8" in result.output and (gpu["type"], gpu["count"]) == ("L4", 1)
    assert "weights 9.1 GB + KV cache 8.6 GB for 8 x 8192 tokens" in (fleet / "models/fp8/README.md").read_text()
    assert "FP8 weight-only through Marlin on SM 8.6" in result.output  # the A10 fallback, said plainly
    assert runner.invoke(app, ["validate"]).exit_code == 0
    _assert_like_every_model_folder(fleet, "fp8")


def test_gated_repo_without_a_token_is_one_line_naming_the_license_the_token_and_the_secret(fleet: Path) -> None:
    result = runner.invoke(app, ["new", "gated", "--hf", "meta/gated-8b"])
    assert result.exit_code == 1
    (line,) = _error_lines(result.output)
    assert "meta/gated-8b is gated" in line and "accept its license" in line and "HF_TOKEN=" in line
    assert "modal secret create huggingface-secret HF_TOKEN=hf_..." in line
    assert not (fleet / "models/gated").exists() and "Traceback" not in result.output


def test_gated_repo_with_a_token_that_has_no_access_says_to_accept_the_license(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_someone_else")
    result = runner.invoke(app, ["new", "gated", "--hf", "meta/gated-8b", "--token-secret", "hf-meta"])
    assert result.exit_code == 1
    (line,) = _error_lines(result.output)
    assert (
        "the HF_TOKEN in the environment has no access: accept the license at https://huggingface.co/meta/gated-8b"
        in line
    )
    assert "hf_someone_else" not in result.output and not (fleet / "models/gated").exists()


def test_gated_repo_with_a_token_asks_for_the_modal_secret_then_writes_it(
    fleet: Path, hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    missing = runner.invoke(app, ["new", "gated", "--hf", "meta/gated-8b"])
    assert missing.exit_code == 1
    (line,) = _error_lines(missing.output)
    assert line.startswith("error: --token-secret: meta/gated-8b is gated;") and "modal secret create" in line
    assert not (fleet / "models/gated").exists()
    hub.clear_requests()
    result = runner.invoke(app, ["new", "gated", "--hf", "meta/gated-8b", "--token-secret", "hf-meta"])
    assert result.exit_code == 0, result.output
    weights = _toml(fleet, "gated")["weights"]
    assert isinstance(weights, dict) and weights["token_secret"] == "hf-meta"
    assert "modal secret create hf-meta HF_TOKEN=hf_..." in (fleet / "models/gated/README.md").read_text()
    config_reads = [r for r in hub.requests if r.file_path == "config.json"]
    assert config_reads and all(r.authorized for r in config_reads)
    assert TOKEN not in result.output  # never printed


def test_multimodal_model_is_served_with_a_bound_on_images_per_prompt(fleet: Path) -> None:
    result = runner.invoke(app, ["new", "vision", "--hf", "acme/vl-7b"])
    assert result.exit_code == 0, result.output
    vllm = _toml(fleet, "vision")["vllm"]
    assert isinstance(vllm, dict)
    assert vllm["extra_args"] == ["--limit-mm-per-prompt", '{"image": 4, "video": 0}']
    assert "inputs: text + image, video" in result.output
    readme = (fleet / "models/vision/README.md").read_text()
    assert "text and image and video (Qwen2_5_VLForConditionalGeneration)" in readme
    assert runner.invoke(app, ["validate"]).exit_code == 0
    _assert_like_every_model_folder(fleet, "vision")


def test_a_branch_name_is_resolved_to_its_commit_and_the_commit_is_written(fleet: Path, hub: LoopbackHub) -> None:
    dev_sha = _ref_sha(hub, "acme/moving", "dev")
    main_sha = _ref_sha(hub, "acme/moving", "main")
    assert dev_sha != main_sha
    result = runner.invoke(
        app, ["new", "moving", "--hf", "acme/moving", "--revision", "dev", "--max-model-len", "16384"]
    )
    assert result.exit_code == 0, result.output
    assert f"acme/moving@dev = commit {dev_sha}" in result.output
    weights = _toml(fleet, "moving")["weights"]
    assert isinstance(weights, dict) and weights["revision"] == dev_sha
    # main's config.json caps the context at 8192: reading main would have refused 16384.
    refused = runner.invoke(app, ["new", "moving-main", "--hf", "acme/moving", "--max-model-len", "16384"])
    assert refused.exit_code == 1
    assert "--max-model-len: 16384 is above the model's max_position_embeddings (8192)" in refused.output


def _ref_sha(hub: LoopbackHub, repo: str, ref: str) -> str:
    """The commit ``ref`` points at, as the hub itself answers it (model info)."""
    from huggingface_hub import HfApi

    sha = HfApi(endpoint=hub.endpoint, token=False).model_info(repo, revision=ref).sha
    assert sha is not None
    return sha


def test_a_model_that_fits_no_gpu_names_the_smallest_shortfall_and_writes_nothing(fleet: Path) -> None:
    result = runner.invoke(app, ["new", "huge", "--hf", "acme/huge"])
    assert result.exit_code == 1
    (line,) = _error_lines(result.output)
    # The closest option is the most memory in the table: 8 x B200 = 1296 GB usable.
    match = re.search(r"the closest is B200:8: needs ([\d.]+) GB .*= 1296\.0 GB: ([\d.]+) GB short", line)
    assert match, line
    assert float(match.group(2)) == pytest.approx(float(match.group(1)) - 1296.0, abs=0.11)
    assert "fits no GPU in fleet.toml's price table at --max-model-len 8192 and --concurrency 8" in line
    assert not (fleet / "models/huge").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--hf", "acme/no-such-model"], "--hf: acme/no-such-model not found on http://127.0.0.1:"),
        (
            ["--hf", "acme/dense-8b", "--revision", "v9"],
            "--revision: 'v9' is not a branch, tag or commit of acme/dense-8b",
        ),
        (["--hf", "not a repo"], "--hf: 'not a repo' is not a repo id; write it as org/name"),
    ],
    ids=["unknown-repo", "unknown-revision", "bad-repo-id"],
)
def test_hub_failures_are_one_line_naming_the_fix_and_write_nothing(
    fleet: Path, args: list[str], expected: str
) -> None:
    result = runner.invoke(app, ["new", "broken", *args])
    assert result.exit_code == 1
    (line,) = _error_lines(result.output)
    assert expected in line
    assert not (fleet / "models/broken").exists() and "Traceback" not in result.output


def test_no_connection_to_the_hub_is_one_line_naming_the_fix(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
    result = runner.invoke(app, ["new", "offline", "--hf", "acme/dense-8b"])
    assert result.exit_code == 1
    (line,) = _error_lines(result.output)
    assert f"cannot reach the hub (http://127.0.0.1:{closed})" in line and "--from-dir PATH" in line
    assert not (fleet / "models/offline").exists()


def test_an_existing_folder_is_never_touched_and_the_hub_is_not_asked(fleet: Path, hub: LoopbackHub) -> None:
    folder = fleet / "models/dense"
    folder.mkdir()
    (folder / "model.toml").write_text("# mine\n")
    hub.clear_requests()
    result = runner.invoke(app, ["new", "dense", "--hf", "acme/dense-8b"])
    assert result.exit_code == 1
    assert "models/dense already exists" in result.output
    assert (folder / "model.toml").read_text() == "# mine\n" and sorted(folder.iterdir()) == [folder / "model.toml"]
    assert hub.requests == []


def test_gpu_override_shows_its_fit_and_refuses_one_that_is_short(fleet: Path) -> None:
    chosen = runner.invoke(app, ["new", "big-gpu", "--hf", "acme/dense-8b", "--gpu", "H100"])
    assert chosen.exit_code == 0, chosen.output
    assert "H100 was chosen with --gpu; the cheapest fit would be L4:2 at $1.60/h (H100: $3.95/h)" in chosen.output
    assert re.search(r"H100\s+│\s+3\.95\s+│\s+26\.2\s+│\s+72\.0\s+│ fits, 45\.8 GB spare", chosen.output)
    short = runner.invoke(app, ["new", "small-gpu", "--hf", "acme/dense-8b", "--gpu", "L4"])
    assert short.exit_code == 1
    (line,) = _error_lines(short.output)
    assert "--gpu L4: needs 26.2 GB" in line and "L4 x1 gives 24 GB x 1 x 0.90 = 21.6 GB: 4.6 GB short" in line
    assert not (fleet / "models/small-gpu").exists()


def test_a_gated_repo_asks_a_person_at_a_terminal_for_the_secret(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr("modelfleet.cli.new_cmd.can_prompt", lambda: True)
    result = runner.invoke(app, ["new", "asked", "--hf", "meta/gated-8b"], input="team-hf\n")
    assert result.exit_code == 0, result.output
    assert "modal secret create huggingface-secret HF_TOKEN=hf_..." in result.output
    weights = _toml(fleet, "asked")["weights"]
    assert isinstance(weights, dict) and weights["token_secret"] == "team-hf"


def test_a_private_repo_is_not_found_without_a_token_and_needs_the_secret_with_one(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unseen = runner.invoke(app, ["new", "private", "--hf", "acme/private-8b"])
    assert unseen.exit_code == 1
    (line,) = _error_lines(unseen.output)
    assert "acme/private-8b not found" in line and "it is private: set HF_TOKEN=hf_..." in line
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    missing = runner.invoke(app, ["new", "private", "--hf", "acme/private-8b"])
    assert missing.exit_code == 1 and "--token-secret: acme/private-8b is private;" in missing.output
    result = runner.invoke(app, ["new", "private", "--hf", "acme/private-8b", "--token-secret", "hf-acme"])
    assert result.exit_code == 0, result.output
    assert "the repo is private" in (fleet / "models/private/README.md").read_text()
    assert runner.invoke(app, ["validate"]).exit_code == 0


def test_the_loopback_hub_refuses_to_serve_the_weights_of_a_header_only_file(hub: LoopbackHub, tmp_path: Path) -> None:
    """The fixture repos hold headers only: a client that tried to download a shard would fail, not pass."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    sha = _ref_sha(hub, "acme/dense-8b", "main")
    metadata = HfApi(endpoint=hub.endpoint, token=False).get_safetensors_metadata("acme/dense-8b", revision=sha)
    assert sum(m.parameter_count["BF16"] for m in metadata.files_metadata.values()) == 8_030_261_248
    with pytest.raises(HfHubHTTPError, match="500"):
        hf_hub_download(
            "acme/dense-8b",
            "model-00001-of-00004.safetensors",
            revision=sha,
            endpoint=hub.endpoint,
            token=False,
            cache_dir=str(tmp_path),
        )
