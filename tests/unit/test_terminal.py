"""The one TTY/CI check behind prompts, progress bars and table widths."""

from __future__ import annotations

import io

import pytest

from modelfleet.terminal import in_ci, is_interactive


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("value", "ci"), [("true", True), ("1", True), ("", False), ("false", False), ("0", False)])
def test_ci_is_read_as_a_boolean(monkeypatch: pytest.MonkeyPatch, value: str, ci: bool) -> None:
    # CI=false (a developer undoing a runner's CI=true) used to count as CI: no prompts, no bars.
    monkeypatch.setenv("CI", value)
    assert in_ci() is ci
    assert is_interactive(_Tty()) is not ci


def test_a_pipe_is_never_interactive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert not is_interactive(io.StringIO())
    assert is_interactive(_Tty())
