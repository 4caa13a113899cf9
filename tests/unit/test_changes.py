"""Which models a git diff touches: the merge pipeline and `deploy-all --changed-since` rely on it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from modelfleet.catalog import Catalog, load_catalog
from modelfleet.changes import classify, detect_changes
from modelfleet.gitinfo import GitError, is_null_ref
from modelfleet.settings import FleetSettings
from tests.unit.conftest import MINIMAL_MODEL

GIT_IDENTITY = ("-c", "user.name=fleet test", "-c", "user.email=fleet@example.invalid", "-c", "commit.gpgsign=false")


def git(root: Path, *args: str) -> str:
    """Run git in the test repo (a fixed identity: the machine's config must not matter)."""
    done = subprocess.run(["git", *GIT_IDENTITY, *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit_all(root: Path, message: str) -> str:
    """Commit everything and return the new commit's hash."""
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(root, "rev-parse", "HEAD")


def catalog_of(root: Path) -> Catalog:
    """The catalog as the CLI would load it for this repo."""
    return load_catalog(FleetSettings(root=root))


@pytest.fixture
def git_fleet(fleet_repo: Path, write_model: Callable[[str, str], Path]) -> Path:
    """A fleet repo under git with three models (alpha, beta, gamma) and a platform file, committed."""
    git(fleet_repo, "init", "--quiet", "--initial-branch=main")
    (fleet_repo / "platform" / "modelfleet").mkdir(parents=True)
    (fleet_repo / "platform" / "modelfleet" / "engine.py").write_text("VERSION = 1\n")
    (fleet_repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    for name in ("alpha", "beta", "gamma"):
        write_model(name, _model_text(name))
    commit_all(fleet_repo, "three models")
    return fleet_repo


def _model_text(name: str, max_model_len: int = 8192) -> str:
    """A valid model.toml (``name`` is the folder: each model serves under its own name)."""
    return MINIMAL_MODEL.replace("max_model_len = 8192", f"max_model_len = {max_model_len}")


def test_a_new_model_folder_is_added_and_affected(git_fleet: Path, write_model: Callable[[str, str], Path]) -> None:
    base = git(git_fleet, "rev-parse", "HEAD")
    write_model("delta", _model_text("delta"))
    commit_all(git_fleet, "add delta")

    changes = detect_changes(git_fleet, base, catalog_of(git_fleet), head="HEAD")

    assert (changes.added, changes.changed, changes.removed) == (["delta"], [], [])
    assert changes.affected == ["delta"]
    assert not changes.platform_changed


def test_an_edited_model_toml_changes_only_that_model(git_fleet: Path, write_model: Callable[[str, str], Path]) -> None:
    base = git(git_fleet, "rev-parse", "HEAD")
    write_model("beta", _model_text("beta", max_model_len=4096))
    commit_all(git_fleet, "shorter context for beta")

    changes = detect_changes(git_fleet, base, catalog_of(git_fleet), head="HEAD")

    assert changes.changed == ["beta"]
    assert changes.affected == ["beta"]


def test_any_file_in_a_model_folder_changes_that_model(git_fleet: Path) -> None:
    base = git(git_fleet, "rev-parse", "HEAD")
    (git_fleet / "models" / "gamma" / "README.md").write_text("why this GPU\n")
    commit_all(git_fleet, "document gamma")

    changes = detect_changes(git_fleet, base, catalog_of(git_fleet), head="HEAD")

    assert changes.changed == ["gamma"]
    assert changes.affected == ["gamma"]


def test_a_deleted_folder_is_removed_and_not_deployed(git_fleet: Path) -> None:
    base = git(git_fleet, "rev-parse", "HEAD")
    git(git_fleet, "rm", "-r", "--quiet", "models/alpha")
    commit_all(git_fleet, "drop alpha")

    changes = detect_changes(git_fleet, base, catalog_of(git_fleet), head="HEAD")

    assert changes.removed == ["alpha"]
    assert changes.affected == []


def test_a_platform_change_affects_every_model(git_fleet: Path) -> None:
    base = git(git_fleet, "rev-parse", "HEAD")
    (git_fleet / "platform" / "modelfleet" / "engine.py").write_text("VERSION = 2\n")
    commit_all(git_fleet, "engine v2")

    changes = detect_changes(git_fleet, base, catalog_of(git_fleet), head="HEAD")

    assert changes.platform_changed
    assert changes.platform_files == ["platform/modelfleet/engine.py"]
    assert changes.affected == ["alpha", "beta", "gamma"]
    assert (changes.added, changes.changed, changes.removed) == ([], [], [])


def test_fleet_toml_and_volumes_are_platform_too(git_fleet: Path) -> None:
    base = git(git_fleet, "rev-parse", "HEAD")
    with (git_fleet / "fleet.toml").open("a") as handle:
        handle.write("\n# a comment\n")
    commit_all(git_fleet, "touch fleet.toml")

    changes = detect_changes(git_fleet, base, catalog_of(git_fleet), head="HEAD")

    assert changes.platform_changed
    assert changes.affected == ["alpha", "beta", "gamma"]


def test_a_renamed_folder_is_one_removed_and_one_added(git_fleet: Path) -> None:
    base = git(git_fleet, "rev-parse", "HEAD")
    git(git_fleet, "mv", "models/gamma", "models/gamma-2")
    commit_all(git_fleet, "rename gamma")

    changes = detect_changes(git_fleet, base, catalog_of(git_fleet), head="HEAD")

    assert (changes.added, changes.removed) == (["gamma-2"], ["gamma"])
    assert changes.affected == ["gamma-2"]


def test_a_broken_new_folder_is_reported_not_deployed(git_fleet: Path, write_model: Callable[[str, str], Path]) -> None:
    base = git(git_fleet, "rev-parse", "HEAD")
    write_model("bad", "[weights]\nsource = 'nowhere'\n")
    commit_all(git_fleet, "a broken folder")

    changes = detect_changes(git_fleet, base, catalog_of(git_fleet), head="HEAD")

    assert changes.added == ["bad"]
    assert changes.broken == ["bad"]
    assert changes.affected == []


def test_the_working_tree_counts_untracked_folders_when_no_head_is_given(
    git_fleet: Path, write_model: Callable[[str, str], Path]
) -> None:
    write_model("epsilon", _model_text("epsilon"))

    changes = detect_changes(git_fleet, "HEAD", catalog_of(git_fleet))

    assert changes.added == ["epsilon"]
    assert changes.affected == ["epsilon"]


def test_nothing_changed_affects_nothing(git_fleet: Path) -> None:
    changes = detect_changes(git_fleet, "HEAD", catalog_of(git_fleet), head="HEAD")

    assert changes.affected == [] and not changes.platform_changed


def test_an_unknown_ref_is_a_clear_error(git_fleet: Path) -> None:
    with pytest.raises(GitError, match=r"'no-such-branch' is not a commit .*fetch-depth: 0"):
        detect_changes(git_fleet, "no-such-branch", catalog_of(git_fleet))


def test_paths_that_only_look_like_platform_or_models_are_neither(fleet_repo: Path) -> None:
    statuses = {"pyproject.toml.bak": "A", "platformer/x.py": "M", "models/model.schema.json": "M", "README.md": "M"}

    changes = classify(statuses, catalog_of(fleet_repo))

    assert not changes.platform_changed
    assert (changes.added, changes.changed, changes.removed) == ([], [], [])


@pytest.mark.parametrize(
    ("ref", "null"), [("0" * 40, True), ("", True), ("  ", True), ("0a" * 20, False), ("HEAD", False)]
)
def test_githubs_all_zero_before_sha_names_no_commit(ref: str, null: bool) -> None:
    assert is_null_ref(ref) is null
