"""The console entry point loads only the running command's module, and that module really has it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main

from modelfleet.cli.app import COMMAND_MODULES, COMMAND_OWNERS, build_app, modules_for


@pytest.mark.parametrize(("command", "module"), sorted(COMMAND_OWNERS.items()))
def test_each_mapped_command_is_registered_by_the_module_the_map_names(command: str, module: str) -> None:
    assert module in COMMAND_MODULES
    assert command in typer.main.get_command(build_app((module,))).commands  # type: ignore[attr-defined]


def test_help_a_missing_command_and_an_unmapped_one_load_every_module() -> None:
    assert modules_for([]) == COMMAND_MODULES
    assert modules_for(["--help"]) == COMMAND_MODULES
    assert modules_for(["validate", "--help"]) == COMMAND_MODULES
    assert modules_for(["smoke", "x"]) == COMMAND_MODULES
    assert modules_for(["--debug", "plan", "--format", "json"]) == ("modelfleet.cli.plan_cmds",)


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_validate_and_plan_start_without_the_openai_sdk_or_the_modal_client(command: str) -> None:
    probe = (
        f"import sys; from modelfleet.cli import app as cli; sys.argv = ['fleet', '{command}']\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('openai', 'modal') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr
