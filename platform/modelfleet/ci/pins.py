"""The third-party actions the workflows use, pinned to full commit SHAs.

A tag can be moved to other code by whoever controls the action's repository; a
commit SHA cannot, so the workflows name SHAs and keep the tag as a comment for
people. To upgrade: resolve the new tag (``git ls-remote https://github.com/OWNER/REPO
refs/tags/TAG``), change both fields here, run ``fleet ci render``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActionPin:
    """One action at one commit, with the release tag that commit carries."""

    repo: str
    sha: str
    tag: str

    def __str__(self) -> str:
        """What a step's ``uses:`` says: ``owner/repo@sha # tag``."""
        return f"{self.repo}@{self.sha} # {self.tag}"


ACTIONS: dict[str, ActionPin] = {
    "checkout": ActionPin("actions/checkout", "08c6903cd8c0fde910a37f88322edcfb5dd907a8", "v5.0.0"),
    "setup_python": ActionPin("actions/setup-python", "a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
    # The merge run exports the state; a pull request's plan downloads it from that run
    # (run-id + github-token inputs, action.yml of download-artifact v8.0.1).
    "upload_artifact": ActionPin("actions/upload-artifact", "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "download_artifact": ActionPin("actions/download-artifact", "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
}
