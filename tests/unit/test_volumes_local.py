"""Seeding from a local directory, and what the volume inventory and prune make of it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from modelfleet.catalog import CatalogModel
from modelfleet.errors import FleetError
from modelfleet.settings import FleetSettings
from modelfleet.volumes import local_volume_root, location, prune, scan, seed, verify_model
from modelfleet.volumes.space import DiskSpaceError, ensure_free_space

MakeModel = Callable[..., CatalogModel]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "my-checkpoint"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (folder / "model.safetensors").write_bytes(os.urandom(4096))
    return folder


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    return tmp_path / "volume"


def test_a_local_directory_is_copied_onto_the_volume_and_verified(
    source: Path, volume: Path, make_model: MakeModel
) -> None:
    model = make_model("mine", {"source": "local", "path": str(source)})

    result = seed(model, volume)

    assert result.checkpoint_dir.parent == volume / "models--local--mine" / "snapshots"
    assert (result.checkpoint_dir / "model.safetensors").read_bytes() == (source / "model.safetensors").read_bytes()
    assert (result.downloaded_files, result.files, result.skipped) == (2, 2, False)
    assert verify_model(model, volume).ok


def test_a_relative_path_is_read_from_the_model_folder(source: Path, volume: Path, make_model: MakeModel) -> None:
    model = make_model("mine", {"source": "local", "path": "weights"})
    source.rename(model.folder / "weights")

    assert seed(model, volume).files == 2


def test_a_second_seed_copies_nothing(source: Path, volume: Path, make_model: MakeModel) -> None:
    model = make_model("mine", {"source": "local", "path": str(source)})
    first = seed(model, volume)
    before = (first.checkpoint_dir / "model.safetensors").stat().st_mtime_ns

    again = seed(model, volume)

    assert again.skipped and again.downloaded_files == 0
    assert (again.checkpoint_dir / "model.safetensors").stat().st_mtime_ns == before


def test_an_edited_source_becomes_a_new_revision_and_the_old_one_stale(
    source: Path, volume: Path, make_model: MakeModel
) -> None:
    model = make_model("mine", {"source": "local", "path": str(source)})
    old = seed(model, volume).checkpoint_dir
    (source / "model.safetensors").write_bytes(os.urandom(8192))

    new = seed(model, volume).checkpoint_dir

    assert new != old
    assert (new / "model.safetensors").stat().st_size == 8192
    stale = [r for r in scan(volume, [model]) if r.stale]
    assert [r.where.snapshot for r in stale] == [old]
    assert prune(stale) == 4096 + len('{"architectures": ["LlamaForCausalLM"]}')
    assert not old.exists() and verify_model(model, volume).ok


def test_a_directory_without_config_json_is_refused_naming_the_field(
    tmp_path: Path, volume: Path, make_model: MakeModel
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    model = make_model("mine", {"source": "local", "path": str(empty)})

    with pytest.raises(FleetError, match=r"model.toml: weights.path: .*empty has no config.json"):
        seed(model, volume)
    assert not location(model, volume).manifest.exists()


def test_a_copy_killed_half_way_is_cleaned_up_and_never_counts_as_seeded(
    source: Path, volume: Path, make_model: MakeModel
) -> None:
    model = make_model("mine", {"source": "local", "path": str(source)})
    where = location(model, volume)
    leftover = where.snapshot.parent / f".copying-{where.revision}-killed"
    (leftover / "checkpoint").mkdir(parents=True)  # what SIGKILL leaves of a TemporaryDirectory

    assert not verify_model(model, volume).ok
    assert scan(volume, [model]) == []  # a scratch folder is not a revision
    seed(model, volume)

    assert not leftover.exists()
    assert [p.name for p in where.snapshot.parent.iterdir()] == [where.revision]


def test_a_damaged_copy_is_detected_and_replaced(source: Path, volume: Path, make_model: MakeModel) -> None:
    model = make_model("mine", {"source": "local", "path": str(source)})
    shard = seed(model, volume).checkpoint_dir / "model.safetensors"
    shard.write_bytes(bytes(4096))

    assert verify_model(model, volume).bad == ["model.safetensors"]
    assert [r.state for r in scan(volume, [model])] == ["seeded"]  # same size: only a re-hash tells
    repaired = seed(model, volume)

    assert not repaired.skipped
    assert shard.read_bytes() == (source / "model.safetensors").read_bytes()


def test_too_little_free_space_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(DiskSpaceError, match=r"not enough disk space on .* for org/big@abc: it needs [\d.]+ GB"):
        ensure_free_space(tmp_path, 10**18, what="org/big@abc")
    ensure_free_space(tmp_path, 1, what="tiny")


def test_the_local_volume_folder_is_named_like_the_declared_modal_volume(fleet_repo: Path) -> None:
    settings = FleetSettings()
    assert local_volume_root(settings) == fleet_repo / ".fleet" / "volumes" / "modelfleet-weights"
    (fleet_repo / "volumes" / "weights.toml").write_text(
        'name = "team-weights"\npurpose = "weights"\nmount_path = "/w"\nread_only_when_serving = true\n'
    )
    assert local_volume_root(settings).name == "team-weights"


def test_a_fleet_without_a_weights_volume_fails_the_same_way_on_both_targets(
    fleet_repo: Path, source: Path, make_model: MakeModel
) -> None:
    from modelfleet.catalog import load_catalog
    from modelfleet.targets.modal.bundle import make_bundle
    from modelfleet.volumes.layout import VolumeNotDeclaredError

    (fleet_repo / "volumes" / "weights.toml").unlink()
    settings = FleetSettings()
    catalog = load_catalog(settings)
    # No silent "modelfleet-weights" locally while Modal refuses: one lookup, one error.
    with pytest.raises(VolumeNotDeclaredError, match=r"volumes/: no valid volume with purpose = 'weights'; declare"):
        local_volume_root(settings)
    model = make_model("mine", {"source": "local", "path": str(source)})
    with pytest.raises(VolumeNotDeclaredError, match="no valid volume with purpose = 'weights'"):
        make_bundle(model, catalog, settings)


def test_a_broken_volume_file_is_named_in_the_lookup_error(fleet_repo: Path) -> None:
    from modelfleet.volumes.layout import VolumeNotDeclaredError

    (fleet_repo / "volumes" / "weights.toml").write_text('name = "w"\npurpose = "weights"\nmount_path = "/w"\n')
    with pytest.raises(VolumeNotDeclaredError, match=r"\(volumes/weights\.toml: read_only_when_serving: "):
        local_volume_root(FleetSettings())


def test_two_weights_volumes_are_refused(fleet_repo: Path) -> None:
    from modelfleet.volumes.layout import VolumeNotDeclaredError

    (fleet_repo / "volumes" / "more.toml").write_text(
        'name = "more-weights"\npurpose = "weights"\nmount_path = "/w"\nread_only_when_serving = true\n'
    )
    with pytest.raises(
        VolumeNotDeclaredError, match=r"several volumes with purpose = 'weights' \(modelfleet-weights, "
    ):
        local_volume_root(FleetSettings())


def test_a_checkpoint_is_handed_out_only_once_seeded(source: Path, volume: Path, make_model: MakeModel) -> None:
    from modelfleet.volumes.inventory import NotSeededError, WeightsVolume, seeded_checkpoint

    model = make_model("mine", {"source": "local", "path": str(source)})
    with pytest.raises(
        NotSeededError, match=r"^mine: local/mine@\w+ is not seeded on volume: no manifest.*fleet seed mine"
    ):
        seeded_checkpoint(model, volume)
    seeded = seed(model, volume)
    assert (
        seeded_checkpoint(model, volume) == seeded.checkpoint_dir == WeightsVolume("volume", volume).checkpoint(model)
    )
    (seeded.checkpoint_dir / "model.safetensors").write_bytes(b"short")
    with pytest.raises(NotSeededError, match=r"1 file\(s\) missing or damaged: model\.safetensors"):
        seeded_checkpoint(model, volume)
