"""Block digests in the manifest: verification re-hashes pieces of a file on every core and still
finds any damaged byte; manifests written before blocks existed verify by whole-file sha256.

Why: a checkpoint of one big shard (the demo model) verified on one core only; block digests
spread it, so they must cover every byte (first, middle, last, partial last block) and never
mistake a file for whole.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from modelfleet.volumes import hashing, manifest
from modelfleet.volumes.manifest import build_entries, read_manifest, verify, write_manifest

BLOCK = 4096


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "BLOCK_SIZE", BLOCK)
    monkeypatch.setattr(manifest, "BLOCK_SIZE", BLOCK)
    monkeypatch.setattr(hashing, "READ_SIZE", 1000)  # several reads per block, the last one short


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    folder = tmp_path / "snapshot"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(bytes(i % 253 for i in range(5 * BLOCK + 123)))
    (folder / "config.json").write_text('{"a": 1}')
    (folder / "empty.txt").write_bytes(b"")
    return folder


def _seeded(checkpoint: Path) -> Path:
    path = checkpoint.parent / "manifest.json"
    write_manifest(path, build_entries(checkpoint), source="test:x")
    return path


def test_the_manifest_lists_the_sha256_of_every_block_including_the_short_last_one(checkpoint: Path) -> None:
    data = json.loads(_seeded(checkpoint).read_text())
    shard = (checkpoint / "model.safetensors").read_bytes()

    assert data["block_size"] == BLOCK
    by_path = {f["path"]: f for f in data["files"]}
    expected = [hashlib.sha256(shard[i : i + BLOCK]).hexdigest() for i in range(0, len(shard), BLOCK)]
    assert by_path["model.safetensors"]["blocks"] == expected and len(expected) == 6
    assert by_path["model.safetensors"]["sha256"] == hashlib.sha256(shard).hexdigest()
    assert by_path["empty.txt"]["blocks"] == []


@pytest.mark.parametrize("offset", [0, BLOCK - 1, BLOCK, 3 * BLOCK + 17, 5 * BLOCK + 122])
def test_one_flipped_byte_in_any_block_fails_the_file(checkpoint: Path, offset: int) -> None:
    path = _seeded(checkpoint)
    shard = checkpoint / "model.safetensors"
    data = bytearray(shard.read_bytes())
    data[offset] ^= 0xFF
    shard.write_bytes(data)

    result = verify(checkpoint, path)

    assert not result.ok and result.bad == ["model.safetensors"]


def test_an_untouched_checkpoint_verifies_by_blocks(checkpoint: Path) -> None:
    path = _seeded(checkpoint)
    assert verify(checkpoint, path).ok
    found = read_manifest(path)
    assert found is not None and all(len(e.blocks) == -(-e.size // BLOCK) for e in found.entries)


def test_a_manifest_without_blocks_verifies_by_whole_file_and_still_finds_damage(checkpoint: Path) -> None:
    path = _seeded(checkpoint)
    data = json.loads(path.read_text())
    del data["block_size"]
    for entry in data["files"]:
        del entry["blocks"]  # as written before block digests existed
    path.write_text(json.dumps(data))
    assert verify(checkpoint, path).ok

    shard = checkpoint / "model.safetensors"
    shard.write_bytes(b"\x01" + shard.read_bytes()[1:])

    assert verify(checkpoint, path).bad == ["model.safetensors"]


def test_blocks_of_another_block_size_are_not_trusted_and_the_whole_file_is_hashed(
    checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _seeded(checkpoint)
    monkeypatch.setattr(hashing, "BLOCK_SIZE", 2 * BLOCK)
    monkeypatch.setattr(manifest, "BLOCK_SIZE", 2 * BLOCK)
    assert verify(checkpoint, path).ok  # the recorded 4 KiB blocks are not compared with 8 KiB pieces

    shard = checkpoint / "model.safetensors"
    shard.write_bytes(shard.read_bytes()[:-1] + b"\xff")
    assert verify(checkpoint, path).bad == ["model.safetensors"]
