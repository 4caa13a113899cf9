"""Everything the platform asks git, run one way: what a deploy is tagged with, and what changed.

A deploy is tagged with the commit (``-dirty`` only when allowed); the merge pipeline
deploys the models that the commits from a base ref changed (``modelfleet.changes``
classifies the paths this module lists). Every call goes through ``_git``, so a
missing git, a failing command and a timeout read the same everywhere, as a
``GitError`` naming what git was needed for.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from modelfleet.errors import FleetError

GIT_TIMEOUT_SECONDS = 60


class GitError(FleetError):
    """Git cannot answer (not installed, not a repository, unknown ref) or its answer forbids the operation."""


def _git(root: Path, *args: str, needed_for: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``git ARGS`` in ``root``; a missing git or (with ``check``) a failing command is a GitError."""
    try:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=check, timeout=GIT_TIMEOUT_SECONDS
        )
    except FileNotFoundError:
        raise GitError(f"git is not installed; it is needed {needed_for}") from None
    except subprocess.CalledProcessError as error:
        raise GitError(f"git {args[0]} failed in {root}: {error.stderr.strip()}") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took more than {GIT_TIMEOUT_SECONDS} s in {root}") from None


_TAG = "to tag a deploy with its commit"
_CHANGES = "to find which models changed"


def head_commit(root: Path) -> str:
    """Short hash of HEAD."""
    return _git(root, "rev-parse", "--short=12", "HEAD", needed_for=_TAG).stdout.strip()


def dirty_paths(root: Path) -> list[str]:
    """Tracked files with uncommitted changes (untracked files do not change a deploy's tag)."""
    out = _git(root, "status", "--porcelain", "--untracked-files=no", needed_for=_TAG).stdout
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


def is_null_ref(ref: str) -> bool:
    """Whether ``ref`` names no commit: GitHub sends forty zeros as ``before`` when a branch is created."""
    stripped = ref.strip()
    return not stripped or set(stripped) == {"0"}


def ref_exists(root: Path, ref: str) -> bool:
    """Whether ``ref`` resolves to a commit here (a force-pushed-away or unfetched commit does not)."""
    if is_null_ref(ref):
        return False
    done = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", needed_for=_CHANGES, check=False)
    return done.returncode == 0


def verify_ref(root: Path, ref: str) -> None:
    """A GitError saying how to fix it unless ``ref`` is a commit here."""
    if not ref_exists(root, ref):
        raise GitError(
            f"git ref {ref!r} is not a commit in {root}; pass a branch, tag or commit that exists "
            "(in CI, fetch the history with fetch-depth: 0)"
        )


def name_status(root: Path, base_ref: str, head: str | None) -> dict[str, str]:
    """``{path: status letter}`` from ``base_ref`` to ``head`` (a ref, or the working tree when None)."""
    # --no-renames: a renamed model folder is a removed model plus an added one, which is
    # exactly what a deploy must do. --relative: paths from the fleet root even when the
    # fleet lives in a subfolder of the git repository. -z: any file name is safe.
    args = ["diff", "--name-status", "--no-renames", "--relative", "-z", base_ref]
    if head is not None:
        args.append(head)
    fields = _git(root, *args, "--", needed_for=_CHANGES).stdout.split("\0")
    statuses: dict[str, str] = {}
    for status, path in zip(fields[0::2], fields[1::2], strict=False):
        if status and path:
            statuses[path] = status[0]
    return statuses


def untracked_paths(root: Path) -> list[str]:
    """Files git does not track and does not ignore (a model folder created but not committed yet)."""
    out = _git(root, "ls-files", "--others", "--exclude-standard", "-z", needed_for=_CHANGES).stdout
    return [path for path in out.split("\0") if path]
