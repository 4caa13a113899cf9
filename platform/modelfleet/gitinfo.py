"""The git facts a deploy is tagged with: the commit, and whether the tree is dirty."""

from __future__ import annotations

import subprocess
from pathlib import Path

from modelfleet.errors import FleetError


class GitError(FleetError):
    """The repo's git state cannot be read or forbids the operation."""


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30)
    except FileNotFoundError:
        raise GitError("git is not installed; deploys are tagged with the git commit") from None
    except subprocess.CalledProcessError as error:
        raise GitError(f"git {' '.join(args)} failed in {root}: {error.stderr.strip()}") from None
    return done.stdout.strip()


def head_commit(root: Path) -> str:
    """Short hash of HEAD."""
    return _git(root, "rev-parse", "--short=12", "HEAD")


def dirty_paths(root: Path) -> list[str]:
    """Tracked files with uncommitted changes (untracked files do not change a deploy's tag)."""
    out = _git(root, "status", "--porcelain", "--untracked-files=no")
    return [line[3:] for line in out.splitlines() if line.strip()]


def deploy_tag(root: Path, *, allow_dirty: bool) -> str:
    """The tag for a deploy: the commit, with ``-dirty`` only when explicitly allowed."""
    commit = head_commit(root)
    dirty = dirty_paths(root)
    if not dirty:
        return commit
    if not allow_dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise GitError(
            f"the working tree has uncommitted changes ({shown}); a deploy is tagged with the commit, "
            "so commit first, or pass --allow-dirty to deploy anyway"
        )
    return f"{commit}-dirty"
