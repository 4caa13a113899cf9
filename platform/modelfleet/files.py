"""Writing a file so that a reader sees the old content or the new, never half of either.

Every state file the platform keeps (deploy state, reports, manifests, run records, the
token store) goes through ``write_atomic``, so they all follow the same rules:

- the new content is written to a temporary file in the same folder (a rename is atomic
  only within one file system), with a name no other writer -- process or thread -- uses;
- it is flushed and fsynced before the rename, and the folder after it, so a crash right
  after the rename cannot leave the name pointing at unwritten data or lose the rename;
- ``os.replace`` puts it in place;
- the file keeps the mode of the file it replaces unless a mode is given; a new file gets
  ``0o644`` (the mode is set explicitly: ``mkstemp`` creates ``0o600``); secrets pass
  ``SECRET_MODE`` so the file is never readable by others, not even for an instant.

One exception writes its own way on purpose: ``runtime/launcher.py`` runs by path with
the standard library only (its ready file); ``targets/modal`` keeps state in a Modal Dict.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

SECRET_MODE = 0o600
NEW_FILE_MODE = 0o644


def write_atomic(path: Path, content: str | bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``content`` atomically and durably; creates missing parent folders.

    ``mode`` is the new file's permission bits; without it an existing file's mode is kept
    and a new file gets ``NEW_FILE_MODE``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    wanted = mode if mode is not None else _current_mode(path)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), wanted)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _current_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return NEW_FILE_MODE


def _fsync_folder(folder: Path) -> None:
    # The rename lives in the folder's entry list; without this a power cut can undo it.
    # Some file systems refuse fsync on a folder (EINVAL); the write itself is done then.
    fd = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
