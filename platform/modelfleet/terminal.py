"""Whether a person is watching: the one check behind prompts, progress bars and table widths.

A CI log is never a person, even when the runner gives the job a pseudo-terminal; a pipe
is never a person either. ``CI`` is set by GitHub Actions, GitLab, CircleCI and most other
runners; ``CI=false`` or ``CI=0`` (a developer undoing it) counts as unset.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

_UNSET = ("", "0", "false", "no")


def in_ci() -> bool:
    """Whether this runs in a CI job (the ``CI`` environment variable is set to a true value)."""
    return os.environ.get("CI", "").strip().lower() not in _UNSET


def is_interactive(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (stdout by default, looked up at call time) is a person's terminal, not a CI log."""
    shown = sys.stdout if stream is None else stream
    return shown.isatty() and not in_ci()
