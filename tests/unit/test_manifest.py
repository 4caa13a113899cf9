"""The sha256 manifest: written last and atomically, and a verify that finds every kind of damage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelfleet.volumes.manifest import build_entries, check_sizes, read_manifest, verify, write_manifest

CONFIG_SHA256 = "f9d86028c6e0d64e225186f96acb69338b2c59764df79162107f5c4bb34d1310"  # `sha256sum` of {"a": 1}


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    folder = tmp_path / "snapshot"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"a": 1}')
    (folder / "model.safetensors").write_bytes(b"\x00\x01" * 5000)
    (folder / "sub" / "tokenizer.json").write_text("{}")
    return folder


def _seeded(checkpoint: Path) -> Path:
    manifest = checkpoint.parent / "manifest.json"
    write_manifest(manifest, build_entries(checkpoint), source="test:x")
    return manifest


def test_a_fresh_manifest_verifies_and_lists_every_file_with_size_and_sha256(checkpoint: Path) -> None:
    manifest = _seeded(checkpoint)

    result = verify(checkpoint, manifest)

    assert result.ok and result.files == 3 and result.bytes == 10_000 + 8 + 2
    data = json.loads(manifest.read_text())
    assert [f["path"] for f in data["files"]] == ["config.json", "model.safetensors", "sub/tokenizer.json"]
    assert data["files"][0]["sha256"] == CONFIG_SHA256
    assert data["source"] == "test:x"


def test_without_a_manifest_nothing_counts_as_seeded(checkpoint: Path) -> None:
    result = verify(checkpoint, checkpoint.parent / "manifest.json")
    assert not result.ok
    assert "no manifest" in result.reason


def test_same_size_bit_rot_is_found_by_verify_but_not_by_the_size_check(checkpoint: Path) -> None:
    manifest = _seeded(checkpoint)
    shard = checkpoint / "model.safetensors"
    shard.write_bytes(b"\x01\x00" * 5000)

    assert check_sizes(checkpoint, manifest).ok
    result = verify(checkpoint, manifest)
    assert not result.ok and result.bad == ["model.safetensors"]


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_truncated_or_missing_file_fails_both_checks(checkpoint: Path, damage: str) -> None:
    manifest = _seeded(checkpoint)
    shard = checkpoint / "model.safetensors"
    if damage == "truncate":
        shard.write_bytes(shard.read_bytes()[:100])
    else:
        shard.unlink()

    for result in (check_sizes(checkpoint, manifest), verify(checkpoint, manifest)):
        assert not result.ok and result.bad == ["model.safetensors"]
        assert "model.safetensors" in result.reason


def test_an_unreadable_manifest_counts_as_none(checkpoint: Path) -> None:
    manifest = _seeded(checkpoint)
    manifest.write_text('{"files": [{"path": "config.json"')  # cut off mid-write by something else

    assert read_manifest(manifest) is None
    assert not verify(checkpoint, manifest).ok


def test_writing_the_manifest_leaves_no_temporary_file_behind(checkpoint: Path) -> None:
    manifest = _seeded(checkpoint)
    assert sorted(p.name for p in manifest.parent.iterdir()) == ["manifest.json", "snapshot"]


def test_hashes_a_source_already_computed_are_reused(checkpoint: Path) -> None:
    entries = build_entries(checkpoint, {"model.safetensors": "f" * 64})
    by_path = {e.path: e.sha256 for e in entries}
    assert by_path["model.safetensors"] == "f" * 64
    assert by_path["config.json"] == CONFIG_SHA256
