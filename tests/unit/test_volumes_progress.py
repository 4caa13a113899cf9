"""Byte bars are for a person at a terminal: never in CI logs or pipes."""

from __future__ import annotations

import sys

import pytest

from modelfleet.terminal import is_interactive
from modelfleet.volumes.progress import SeedProgress


def test_no_bars_in_ci_or_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    monkeypatch.delenv("CI", raising=False)
    assert is_interactive(sys.stderr)
    monkeypatch.setenv("CI", "true")
    assert not is_interactive(sys.stderr)
    monkeypatch.delenv("CI")
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert not is_interactive(sys.stderr)


def test_the_hub_clients_bars_feed_one_byte_bar_sized_by_the_files(capsys: pytest.CaptureFixture[str]) -> None:
    # The shapes snapshot_download creates: a file-count bar, a transfer bar, a bytes-written bar.
    with SeedProgress(enabled=True) as bars:
        bar_class = bars.tqdm_class("org/model")
        files = bar_class(desc="Fetching 2 files", total=2)
        transfer = bar_class(desc="Downloading bytes", total=0, unit="B")
        written = bar_class(desc="Reconstructing", total=0, unit="B")
        written.total = 3_000
        written.update(1_000)
        written.update(2_000)
        transfer.update(3_000)
        files.update(2)
    assert "3.0/3.0 kB" in capsys.readouterr().err
