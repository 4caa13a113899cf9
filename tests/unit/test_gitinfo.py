"""The one git module: a deploy's tag, and the errors every git question shares."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfleet.gitinfo import GitError, deploy_tag, ref_exists
from tests.unit.test_changes import commit_all, git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "--quiet", "--initial-branch=main")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "alpha.toml").write_text("a = 1\n")
    commit_all(tmp_path, "first")
    return tmp_path


def test_a_clean_tree_is_tagged_with_the_short_commit(repo: Path) -> None:
    assert deploy_tag(repo, allow_dirty=False) == git(repo, "rev-parse", "--short=12", "HEAD")


def test_a_dirty_tree_names_every_changed_path_whole(repo: Path) -> None:
    # git status --porcelain starts the first line with a space (" M path"); stripping the
    # whole output before slicing each line cut the first path's first letter ("odels/...").
    (repo / "models" / "alpha.toml").write_text("a = 2\n")
    with pytest.raises(GitError, match=r"uncommitted changes \(models/alpha.toml\); .*--allow-dirty"):
        deploy_tag(repo, allow_dirty=False)
    assert deploy_tag(repo, allow_dirty=True).endswith("-dirty")


def test_outside_a_repository_the_error_names_the_git_command(tmp_path: Path) -> None:
    with pytest.raises(GitError, match=rf"git rev-parse failed in {tmp_path}"):
        deploy_tag(tmp_path, allow_dirty=False)


def test_a_missing_git_says_what_it_was_needed_for(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "no-bin-here"))
    with pytest.raises(GitError, match="git is not installed; it is needed to find which models changed"):
        ref_exists(repo, "HEAD")
    with pytest.raises(GitError, match="git is not installed; it is needed to tag a deploy with its commit"):
        deploy_tag(repo, allow_dirty=True)
