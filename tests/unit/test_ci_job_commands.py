"""Every `fleet` command the rendered workflows run exists, answers --help, and knows the options the job passes.

A job cannot call a command that is not there: this catches a renamed command or
option before a merge pipeline finds it on the way to production.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from modelfleet.ci.render import WORKFLOWS_DIR
from modelfleet.cli.app import app

REPO_ROOT = Path(__file__).resolve().parents[2]
FLEET = re.compile(r"(?:^|\s)(?:\.venv/bin/)?fleet\s+(?P<args>[^|>;&]*)")


def job_command_lines() -> list[str]:
    """``fleet ...`` invocations (arguments up to a pipe or redirection) in the checked-in workflows."""
    lines: set[str] = set()
    for path in sorted((REPO_ROOT / WORKFLOWS_DIR).glob("*.yml")):
        for line in path.read_text().splitlines():
            for match in FLEET.finditer(line.split("#", 1)[0] if line.lstrip().startswith("#") else line):
                lines.add(match.group("args").strip())
    return sorted(lines)


def resolve(args: list[str]) -> tuple[list[str], Any]:
    """Walk the fleet command tree along ``args``: the command path and the command it names."""
    # Typer ships its own copy of click, so groups are recognised by their ``commands``.
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    for token in args:
        subcommands = getattr(command, "commands", None)
        if subcommands is None or token.startswith("-"):
            break
        sub = subcommands.get(token)
        assert sub is not None, f"`fleet {' '.join([*path, token])}` is not a command (a job calls it)"
        command, path = sub, [*path, token]
    assert path, f"no command in `fleet {' '.join(args)}`"
    return path, command


COMMANDS = job_command_lines()


def test_the_workflows_call_the_whole_deploy_lifecycle() -> None:
    called = {" ".join(shlex.split(line)[:2]) if line.startswith("ci ") else line.split()[0] for line in COMMANDS}
    assert called >= {"validate", "plan", "ci check", "ci matrix", "seed", "deploy", "snapshot", "smoke", "rollback"}
    assert "report" in called


@pytest.mark.parametrize("line", COMMANDS)
def test_a_job_command_exists_and_answers_help(line: str) -> None:
    args = shlex.split(line)
    path, command = resolve(args)

    result = CliRunner().invoke(app, [*path, "--help"])

    assert result.exit_code == 0, f"`fleet {' '.join(path)} --help` failed: {result.output}"
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    passed = {token.split("=", 1)[0] for token in args[len(path) :] if token.startswith("-")}
    assert passed <= known, f"`fleet {' '.join(path)}` has no option {sorted(passed - known)}"
