"""Seeding from the Hugging Face hub: the real ``huggingface_hub`` client against :class:`LoopbackHub`.

What is pinned here is the behaviour users rely on: the pinned commit (not ``main``) lands on
the volume, only the files vLLM needs, verified by a manifest; failures are one clear line; a
second seed touches the network not at all; an interrupted or damaged seed never counts as
seeded and is repaired by the next one.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import constants, file_download

from modelfleet.catalog import CatalogModel
from modelfleet.errors import FleetError
from modelfleet.volumes import location, prune, scan, seed, verify_model
from tests.support.hf_hub import LoopbackHub

REPO = "acme/tiny-chat"
WEIGHTS = bytes(range(256)) * 256  # 64 KiB, LFS
FILES = {
    "config.json": json.dumps({"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 2}).encode(),
    "tokenizer_config.json": b'{"chat_template": "{{ messages }}"}',
    "model.safetensors": WEIGHTS,
    "original/consolidated.pth": b"a duplicate vLLM does not need",
    "README.md": b"# tiny chat\n",
}
SERVED = {"config.json", "tokenizer_config.json", "model.safetensors"}

MakeModel = Callable[..., CatalogModel]


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackHub]:
    """A fresh hub per test, the seeder pointed at it, no token and no stored login."""
    with LoopbackHub(accepted_tokens={"hf_granted"}) as running:
        monkeypatch.setenv("HF_ENDPOINT", running.endpoint)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        # The client waits 1 s before resuming a cut download; record instead of sleeping.
        monkeypatch.setattr(file_download, "time", types.SimpleNamespace(sleep=lambda seconds: None))
        yield running


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    return tmp_path / "volume"


def _hf(revision: str, repo: str = REPO, **extra: Any) -> dict[str, Any]:
    return {"source": "huggingface", "repo": repo, "revision": revision, **extra}


def test_the_pinned_revision_is_seeded_with_only_the_files_vllm_needs(
    hub: LoopbackHub, volume: Path, make_model: MakeModel
) -> None:
    pinned = hub.add_repo(REPO, FILES)
    hub.add_repo(REPO, {**FILES, "config.json": b'{"moved": "main"}'})  # main moves on; the pin must not
    model = make_model("tiny", _hf(pinned))

    result = seed(model, volume)

    assert result.checkpoint_dir == volume / "models--acme--tiny-chat" / "snapshots" / pinned
    assert not result.skipped
    assert result.downloaded_files == 3
    on_disk = {p.relative_to(result.checkpoint_dir).as_posix() for p in result.checkpoint_dir.rglob("*") if p.is_file()}
    assert on_disk == SERVED
    assert (result.checkpoint_dir / "config.json").read_bytes() == FILES["config.json"]
    assert verify_model(model, volume).ok
    manifest = json.loads(location(model, volume).manifest.read_text())
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert listed["model.safetensors"] == hub.file(REPO, pinned, "model.safetensors").sha256


def test_a_second_seed_touches_the_network_not_at_all(hub: LoopbackHub, volume: Path, make_model: MakeModel) -> None:
    model = make_model("tiny", _hf(hub.add_repo(REPO, FILES)))
    seed(model, volume)
    hub.clear_requests()

    again = seed(model, volume)

    assert again.skipped
    assert again.downloaded_files == 0
    assert hub.requests == []


def test_an_unknown_revision_is_a_clear_error_naming_the_field(
    hub: LoopbackHub, volume: Path, make_model: MakeModel
) -> None:
    hub.add_repo(REPO, FILES)
    missing = "0123456789abcdef0123456789abcdef01234567"
    model = make_model("tiny", _hf(missing))

    with pytest.raises(FleetError, match=rf"model.toml: weights.revision: {missing} is not a commit of {REPO}"):
        seed(model, volume)
    assert not verify_model(model, volume).ok


def test_an_unknown_repo_is_a_clear_error(hub: LoopbackHub, volume: Path, make_model: MakeModel) -> None:
    model = make_model("tiny", _hf("0123456789abcdef0123456789abcdef01234567", repo="acme/nowhere"))

    with pytest.raises(
        FleetError, match=r"weights.repo: acme/nowhere does not exist, or is private and needs HF_TOKEN"
    ):
        seed(model, volume)


def test_a_gated_repo_without_a_token_says_how_to_provide_one(
    hub: LoopbackHub, volume: Path, make_model: MakeModel
) -> None:
    model = make_model("tiny", _hf(hub.add_repo(REPO, FILES, gated=True), token_secret="huggingface-secret"))

    with pytest.raises(FleetError) as caught:
        seed(model, volume)

    message = str(caught.value)
    assert f"weights.repo: {REPO} is gated" in message
    assert "HF_TOKEN" in message
    assert "weights.token_secret" in message and "'huggingface-secret'" in message
    assert not verify_model(model, volume).ok


def test_a_gated_repo_with_a_token_lacking_access_never_shows_the_token(
    hub: LoopbackHub, volume: Path, make_model: MakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_model("tiny", _hf(hub.add_repo(REPO, FILES, gated=True)))
    monkeypatch.setenv("HF_TOKEN", "hf_not_granted_secret")

    with pytest.raises(FleetError, match="accept the model's license") as caught:
        seed(model, volume)
    assert "hf_not_granted_secret" not in str(caught.value)

    monkeypatch.setenv("HF_TOKEN", "hf_granted")
    assert seed(model, volume).downloaded_files == 3


def test_a_truncated_download_is_resumed_from_where_it_stopped(
    hub: LoopbackHub, volume: Path, make_model: MakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1 KiB chunks make the 64 KiB shard behave like a multi-GB one cut mid-way.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1024)
    model = make_model("tiny", _hf(hub.add_repo(REPO, FILES)))
    hub.truncate_next("model.safetensors", 10_000)

    result = seed(model, volume)

    assert (result.checkpoint_dir / "model.safetensors").read_bytes() == WEIGHTS
    gets = [r for r in hub.requests if r.method == "GET" and r.file_path == "model.safetensors"]
    assert [(r.status, r.truncated) for r in gets] == [(200, True), (206, False)]
    assert gets[1].headers["range"] == "bytes=9216-"  # the whole 1 KiB chunks written before the cut
    assert verify_model(model, volume).ok


def test_an_interrupted_seed_never_looks_complete_and_the_next_one_finishes_it(
    hub: LoopbackHub, volume: Path, make_model: MakeModel
) -> None:
    model = make_model("tiny", _hf(hub.add_repo(REPO, FILES)))
    for _ in range(8):  # the connection keeps dying until the client gives up: a killed seed
        hub.truncate_next("model.safetensors", 0)

    with pytest.raises(
        FleetError, match=r"weights: the connection to the hub .* failed .*RemoteProtocolError.*run the seed again"
    ):
        seed(model, volume)

    assert (location(model, volume).snapshot / "config.json").is_file()  # some files made it...
    assert not location(model, volume).manifest.exists()  # ...but nothing says "seeded"
    assert "no manifest" in verify_model(model, volume).reason
    assert [r.state for r in scan(volume, [model])] == ["incomplete"]

    hub.heal()
    hub.clear_requests()
    result = seed(model, volume)

    assert verify_model(model, volume).ok
    assert result.downloaded_files == 1  # what arrived before is kept
    assert hub.downloads("model.safetensors") == 1 and hub.downloads("config.json") == 0


def test_a_file_not_matching_the_hubs_hash_is_rejected_and_removed(
    hub: LoopbackHub, volume: Path, make_model: MakeModel
) -> None:
    model = make_model("tiny", _hf(hub.add_repo(REPO, FILES)))
    hub.corrupt("model.safetensors")  # same size, other bytes: only a hash can tell

    with pytest.raises(FleetError, match=r"model.safetensors of acme/tiny-chat@\w+ did not match the hash"):
        seed(model, volume)

    where = location(model, volume)
    assert hub.downloads("model.safetensors") == 2  # rejected, fetched once more, rejected again
    assert not (where.snapshot / "model.safetensors").exists()
    assert not any((where.repo_folder / "blobs").glob(hub.file(REPO, where.revision, "model.safetensors").sha256))
    assert not where.manifest.exists()

    hub.heal()
    assert seed(model, volume).downloaded_files == 1  # only the rejected file is fetched again


def test_a_corrupted_file_on_the_volume_is_detected_and_fetched_again(
    hub: LoopbackHub, volume: Path, make_model: MakeModel
) -> None:
    model = make_model("tiny", _hf(hub.add_repo(REPO, FILES)))
    checkpoint = seed(model, volume).checkpoint_dir
    shard = checkpoint / "model.safetensors"
    damaged = bytearray(shard.read_bytes())
    damaged[123] ^= 0xFF
    shard.resolve().write_bytes(bytes(damaged))  # bit rot in the blob, size unchanged

    found = verify_model(model, volume)
    assert not found.ok and found.bad == ["model.safetensors"]

    hub.clear_requests()
    repaired = seed(model, volume)

    assert repaired.downloaded_files == 1
    assert hub.downloads("model.safetensors") == 1 and hub.downloads("config.json") == 0
    assert shard.read_bytes() == WEIGHTS
    assert verify_model(model, volume).ok


def test_prune_removes_a_stale_revision_but_keeps_blobs_the_current_one_shares(
    hub: LoopbackHub, volume: Path, make_model: MakeModel
) -> None:
    old = hub.add_repo(REPO, FILES)
    new = hub.add_repo(REPO, {**FILES, "config.json": b'{"num_hidden_layers": 3}'})  # same weights blob
    seed(make_model("tiny", _hf(old)), volume)
    current = make_model("tiny", _hf(new))
    seed(current, volume)

    revisions = {r.where.revision: r for r in scan(volume, [current])}
    assert revisions[old].stale and not revisions[new].stale
    assert revisions[old].state == revisions[new].state == "seeded"

    freed = prune([r for r in revisions.values() if r.stale])

    assert freed == len(FILES["config.json"])  # the shared weights blob stayed
    assert [r.where.revision for r in scan(volume, [current])] == [new]
    assert verify_model(current, volume).ok
