"""Running the real ``modal`` CLI, one subprocess per command, and reading what it printed.

Why subprocesses: ``modal deploy`` is the supported way to deploy, each deploy gets
its own client (the modal client keeps one connection per process, and a hung
deploy can be killed alone), and CI runs exactly what a person would type.
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

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_WEB_URL = re.compile(r"https://[A-Za-z0-9.-]+\.modal\.run\S*")
# Lines of the client's output that are decoration, not the reason for a failure.
_NOISE = re.compile(r"^[\s│╭╰╮╯─┌└├\d]*$")
# The client's own one-line verdict ("Error: ...", "InvalidError: ..."), when it printed one.
_VERDICT = re.compile(r"^(\w*(Error|Exception)|Error): ")


class ModalCredentialsError(FleetError):
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

    def reason(self, lines: int = 3) -> str:
        """The last meaningful lines the client printed: its explanation of a failure."""
        text = _ANSI.sub("", f"{self.stdout}\n{self.stderr}")
        meaningful = [line.strip(" │╭╰╮╯─") for line in text.splitlines() if not _NOISE.match(line)]
        verdicts = [line for line in meaningful if _VERDICT.match(line)]
        if verdicts:
            return verdicts[-1]
        return " | ".join(meaningful[-lines:]) or f"modal exited with code {self.returncode}"

    def web_url(self) -> str:
        """The first web endpoint URL in the output ("" if none)."""
        found = _WEB_URL.search(_ANSI.sub("", self.stdout).replace("\n", " ").replace("  ", " "))
        return found.group(0).rstrip(" 🔑") if found else ""

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
    """Run a ``--json`` command and return its parsed output; a failure is a ModalCommandError."""
    result = run_modal(*args, env=env, timeout=timeout)
    if not result.ok:
        raise ModalCommandError(f"`modal {' '.join(args)}` failed: {result.reason()}")
    return result.json()
