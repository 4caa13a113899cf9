"""Running the real ``modal`` CLI, one subprocess per command, and reading what it printed.

Deploys no longer come through here: ``deploy.py`` publishes apps with the SDK from this
process (``app_build.py`` says why and how the container still rebuilds the same app).
The CLI remains for what has no public SDK call in modal 1.6.4 -- ``app history``,
``app rollback``, ``app stop``, ``container list/stop``, ``modal run`` of the seed app --
so CI runs exactly what a person would type, and a hung command can be killed alone (a
timeout is a result, never a hang). The ``--json`` commands run in a few long-lived CLI
processes (``cli_pool``/``cli_worker``), the others in a process each. What a command
*produced* is never scraped from its human output: commands with a result are run with
``--json`` (``checked_json``). Of the human output only the failure is read: the exit
code says whether it failed, and the last line the client printed says why
(``ModalResult.reason``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelfleet.errors import FleetError
from modelfleet.targets.base import TargetCredentialsError

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Box-drawing borders of a rich traceback or panel: decoration, never the reason.
_BORDER = " │╭╰╮╯─┌└├┐┘┤"
# The client's one-line verdict: `Error: ...` from modal/__main__.py (``print_error``), or the
# `SomeError: ...` last line of a traceback of user code.
_VERDICT = re.compile(r"^(\w*(Error|Exception)|Error): ")


class ModalCredentialsError(TargetCredentialsError):
    """No Modal token is configured on this machine."""


class ModalCommandError(FleetError):
    """A ``modal`` CLI command failed; the message carries the client's own reason."""


def require_credentials() -> None:
    """Fail before anything is built when the modal client has no token to use."""
    from modal.config import config

    if config.get("token_id") and config.get("token_secret"):
        return
    raise ModalCredentialsError(
        "no Modal credentials: run `modal token new` (stores a token in ~/.modal.toml), "
        "or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET (in CI, from a Modal service token); nothing was deployed"
    )


@dataclass(frozen=True)
class ModalResult:
    """One finished ``modal`` command."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """Whether the command exited 0."""
        return self.returncode == 0

    def reason(self) -> str:
        """Why the command failed: the client's last verdict line (``Error: ...``), else the last
        line it printed (stderr first), else the exit code."""
        for stream in (self.stderr, self.stdout):
            lines = [line.strip(_BORDER) for line in _ANSI.sub("", stream).splitlines()]
            lines = [line for line in lines if line.strip(_BORDER + "0123456789")]
            verdicts = [line for line in lines if _VERDICT.match(line)]
            if verdicts or lines:
                return (verdicts or lines)[-1]
        return f"modal exited with code {self.returncode}"

    def json(self) -> Any:
        """The command's ``--json`` output, parsed."""
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError:
            raise ModalCommandError(f"`modal {' '.join(self.args)}` did not print JSON: {self.reason()}") from None


def run_modal(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> ModalResult:
    """Run ``python -m modal ARGS`` with this interpreter; a timeout is a failed result, never a hang."""
    full_env = {**os.environ, **(env or {})}
    # Wide, plain output: URLs and JSON must not be wrapped or coloured.
    full_env.update({"COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb", "PYTHONUNBUFFERED": "1"})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "modal", *args],
            env=full_env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout.decode(errors="replace") if isinstance(expired.stdout, bytes) else expired.stdout or ""
        return ModalResult(tuple(args), 124, out, f"timed out after {timeout:.0f}s")
    return ModalResult(tuple(args), done.returncode, done.stdout, done.stderr)


def checked_json(*args: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> Any:
    """Run a ``--json`` command and return its parsed output; a failure is a ModalCommandError.

    The command runs in a long-lived CLI process (``cli_pool``: no interpreter start-up per
    command) unless ``env`` asks for an environment of its own; a worker that dies with the
    command is replaced by a plain ``python -m modal`` run of it.
    """
    result = run_modal(*args, env=env, timeout=timeout) if env else _run_in_pool(args, timeout)
    if not result.ok:
        raise ModalCommandError(f"`modal {' '.join(args)}` failed: {result.reason()}")
    return result.json()


def _run_in_pool(args: tuple[str, ...], timeout: float) -> ModalResult:
    from modelfleet.targets.modal.cli_pool import POOL, WorkerGone

    try:
        reply = POOL.run(args, timeout)
    except WorkerGone:
        return run_modal(*args, timeout=timeout)
    if reply is None:
        return ModalResult(args, 124, "", f"timed out after {timeout:.0f}s")
    return ModalResult(args, int(reply["rc"]), str(reply["stdout"]), str(reply["stderr"]))
