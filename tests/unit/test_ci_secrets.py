"""Least privilege for secrets: a workflow step receives only the secrets its command reads.

A step's ``env:`` block is the only way a secret reaches a ``fleet`` command; one that
the command never reads is a leak with no purpose (issue 12, #15: ``HF_TOKEN`` went to
``fleet seed``, which on the Modal target only starts the seed app, whose container
reads the token from the model's Modal secret).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from modelfleet.ci.render import WORKFLOWS_DIR
from modelfleet.cli.app import app

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET_REF = re.compile(r"\$\{\{\s*secrets\.(\w+)\s*\}\}")
FLEET_COMMAND = re.compile(r"(?:^|\s)(?:\.venv/bin/)?fleet\s+([\w-]+)")


def _steps() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path in sorted((REPO_ROOT / WORKFLOWS_DIR).glob("*.yml")):
        workflow = yaml.safe_load(path.read_text())
        for job_id, job in workflow["jobs"].items():
            for step in job.get("steps", []):
                found.append((path.name, job_id, step))
    return found


def _string_literals(module_name: str) -> set[str]:
    """Every string constant in a module: where the env variable names it reads are spelled."""
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(str(module.__file__)).read_text())
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def _command_module(name: str) -> str:
    command = get_command(app).commands[name]  # type: ignore[attr-defined]
    assert command.callback is not None, f"fleet {name} is a group; name the subcommand"
    return str(command.callback.__module__)


def secrets_of(step: dict[str, Any]) -> dict[str, str]:
    """Step-level env variables that carry a secret: variable -> secret name."""
    return {
        var: match.group(1)
        for var, value in (step.get("env") or {}).items()
        if (match := SECRET_REF.search(str(value)))
    }


@pytest.mark.parametrize(("workflow", "job", "step"), _steps(), ids=lambda v: v if isinstance(v, str) else None)
def test_a_step_gets_only_the_secrets_its_command_reads(workflow: str, job: str, step: dict[str, Any]) -> None:
    secrets = secrets_of(step)
    if not secrets:
        return
    commands = FLEET_COMMAND.findall(step.get("run", ""))
    assert commands, f"{workflow}: {job}: step {step.get('name')!r} gets secrets but runs no fleet command"
    read = set().union(*(_string_literals(_command_module(c)) for c in commands))
    unused = sorted(var for var in secrets if var not in read)
    assert not unused, (
        f"{workflow}: {job}: step {step.get('name')!r} (fleet {', '.join(commands)}) never reads {unused}"
    )


def test_the_seed_step_gets_no_hub_token() -> None:
    seeds = [(w, s) for w, _, s in _steps() if re.search(r"fleet seed\b", s.get("run", ""))]

    assert len(seeds) == 2  # deploy-on-merge and deploy-all
    for workflow, step in seeds:
        assert secrets_of(step) == {}, f"{workflow}: the seed step must not receive {sorted(secrets_of(step))}"
