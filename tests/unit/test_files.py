"""The one atomic-write helper every state file goes through: where the temp file lives, modes, cleanup."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from modelfleet.files import NEW_FILE_MODE, SECRET_MODE, write_atomic
from modelfleet.runtime.tokens import TokenStore
from modelfleet.state import FleetState, save_state_file


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_default_mode_and_its_missing_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "state.json"
    write_atomic(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert _mode(target) == NEW_FILE_MODE
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]


def test_replacing_a_file_keeps_its_mode_unless_one_is_given(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    target.chmod(0o640)
    write_atomic(target, "new")
    assert (target.read_text(), _mode(target)) == ("new", 0o640)
    write_atomic(target, b"secret", mode=SECRET_MODE)
    assert (target.read_bytes(), _mode(target)) == (b"secret", SECRET_MODE)


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "manifest.json"
    target.write_text("old")

    def refuse(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_writers_in_threads_of_one_process_never_share_a_temp_file(tmp_path: Path) -> None:
    # The old state.json writer used one fixed name (state.json.tmp), and the others the
    # process id: two threads then wrote into the same temp file.
    target = tmp_path / "state.json"
    texts = [f"writer {n}\n" * 2000 for n in range(8)]
    threads = [threading.Thread(target=write_atomic, args=(target, text)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert target.read_text() in texts
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_saved_state_export_keeps_the_mode_the_user_gave_it(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state_file(FleetState(), path)
    path.chmod(0o600)
    save_state_file(FleetState(), path)
    assert _mode(path) == 0o600


def test_the_token_store_is_never_readable_by_others(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    store.create("ci")
    assert _mode(tmp_path / "tokens.json") == SECRET_MODE
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["tokens.json"]
