"""Both targets implement every verb of ``Target`` with the protocol's own signature.

The CLI calls these verbs without asking which target it has (no ``getattr``, no
``target.name == ...``): a verb missing on one target, or taking other arguments, would
only show up as a crash on that target.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from modelfleet.targets.base import Target
from modelfleet.targets.local import LocalTarget
from modelfleet.targets.modal import ModalTarget

PLATFORM = Path(__file__).resolve().parents[2] / "platform" / "modelfleet"
VERBS = [name for name, member in vars(Target).items() if inspect.isfunction(member) and not name.startswith("_")]


def test_the_protocol_has_the_verbs_the_cli_used_to_reach_by_reflection() -> None:
    assert {"force_cold_start", "rollback", "weights_volume"} <= set(VERBS)
    assert "supports_snapshots" in Target.__annotations__


@pytest.mark.parametrize("target", [LocalTarget, ModalTarget], ids=["local", "modal"])
@pytest.mark.parametrize("verb", VERBS)
def test_each_target_implements_the_verb_with_the_protocols_signature(target: type, verb: str) -> None:
    declared = inspect.signature(getattr(Target, verb))
    implemented = inspect.signature(getattr(target, verb))
    assert list(implemented.parameters) == list(declared.parameters)
    for name, parameter in declared.parameters.items():
        assert implemented.parameters[name].kind == parameter.kind, f"{target.__name__}.{verb}({name})"
        assert implemented.parameters[name].default == parameter.default, f"{target.__name__}.{verb}({name})"
    assert isinstance(target.supports_snapshots, bool)


def test_the_cli_never_branches_on_the_target_or_reaches_for_verbs_by_name() -> None:
    for file in sorted((PLATFORM / "cli").glob("*.py")):
        text = file.read_text()
        assert "getattr(target" not in text, file.name
        assert 'target.name == "' not in text and 'settings.target != "' not in text, file.name
        assert 'settings.target == "' not in text, file.name


def test_postdeploy_speaks_http_and_imports_nothing_from_the_targets() -> None:
    import ast

    for file in sorted((PLATFORM / "postdeploy").glob("*.py")):
        tree = ast.parse(file.read_text())
        imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        assert not [m for m in imported if m.startswith("modelfleet.targets")], file.name
