"""The two key stores: a 0600 JSON file on this machine, and a ``modal.Dict`` on Modal.

Both hold ``KeyRecord`` JSON by key id -- hashes and limits, never a secret.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelfleet.files import SECRET_MODE, write_atomic
from modelfleet.gateway.keys import ClientKeyError, KeyRecord, live_names


class LocalKeyStore:
    """A JSON file of key records (mode 0600), rewritten atomically under a lock.

    Every local gateway process reads the same file; ``write_atomic`` replaces it whole, so
    a reader sees the old set of keys or the new one, never half a file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, KeyRecord]:
        """Every record by key id."""
        try:
            data = json.loads(self.path.read_text())
            return {key_id: KeyRecord.model_validate(entry) for key_id, entry in data.get("keys", {}).items()}
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError, ValidationError, AttributeError) as error:
            raise ClientKeyError(
                f"{self.path}: key store unreadable ({error.__class__.__name__}); fix or delete it"
            ) from None

    def add(self, record: KeyRecord) -> None:
        """Store a new record; a live key of the same name is refused."""
        with self._locked():
            records = self.load()
            if record.name in live_names(records):
                raise ClientKeyError(f"a key named {record.name!r} exists; revoke it first or pick another name")
            records[record.key_id] = record
            self._write(records)

    def revoke(self, name: str, when: str) -> KeyRecord:
        """Mark the live key ``name`` revoked."""
        with self._locked():
            records = self.load()
            revoked = _revoke_in(records, name, when)
            self._write(records)
        return revoked

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Read-modify-write under a lock: two `fleet keys create` at once must not lose one.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_WRONLY | os.O_CREAT, SECRET_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, records: dict[str, KeyRecord]) -> None:
        content = {"keys": {key_id: record.model_dump(mode="json") for key_id, record in records.items()}}
        write_atomic(self.path, json.dumps(content, indent=2), mode=SECRET_MODE)


class ModalKeyStore:
    """Key records in a named ``modal.Dict``, one entry per key id (``key/<id>``).

    Why a Dict: every gateway container must read the same keys, and containers share no
    disk -- a Volume would need ``reload()`` in each container and its writers ``commit()``,
    while a Dict is "accessible from anywhere, concurrently and in parallel" and persisted
    across redeploys (https://modal.com/docs/guide/dicts). Its reads are network calls of "a
    few dozen ms", so a gateway reads the whole Dict at most once per ``key_cache_ttl_s``
    (one ``items()`` call), never per request. Values are JSON text, not pickles of project
    classes (any client version can read them), as ``targets/modal/state_store.py`` does.

    Caveat from the reference (https://modal.com/docs/reference/modal.Dict): "An individual
    Dict entry will expire after 7 days of inactivity (no reads or writes)". A running
    gateway reads every entry every few seconds, so live keys stay; a fleet with no gateway
    container for 7 days loses its keys -- it fails closed (401), and keys are recreated
    with ``fleet keys create``. ``add`` is not atomic against a concurrent ``add`` of the same
    name from another machine (a Dict has no compare-and-set across two entries); key ids
    never collide, so the worst case is two live keys of one name, both listed.
    """

    PREFIX = "key/"

    def __init__(self, name: str, environment: str | None = None) -> None:
        self.name = name
        self.environment = environment
        self._dict: Any = None
        self._lock = threading.Lock()

    def _store(self) -> Any:
        import modal

        with self._lock:
            if self._dict is None:
                self._dict = modal.Dict.from_name(self.name, environment_name=self.environment, create_if_missing=True)
            return self._dict

    def load(self) -> dict[str, KeyRecord]:
        """Every record by key id (one ``items()`` call)."""
        records: dict[str, KeyRecord] = {}
        for key, value in self._store().items():
            if isinstance(key, str) and key.startswith(self.PREFIX):
                records[key.removeprefix(self.PREFIX)] = KeyRecord.model_validate_json(value)
        return records

    def add(self, record: KeyRecord) -> None:
        """Store a new record; a live key of the same name is refused."""
        if record.name in live_names(self.load()):
            raise ClientKeyError(f"a key named {record.name!r} exists; revoke it first or pick another name")
        self._store().put(f"{self.PREFIX}{record.key_id}", record.model_dump_json())

    def revoke(self, name: str, when: str) -> KeyRecord:
        """Mark the live key ``name`` revoked (rewrites its entry)."""
        records = self.load()
        revoked = _revoke_in(records, name, when)
        self._store().put(f"{self.PREFIX}{revoked.key_id}", revoked.model_dump_json())
        return revoked


def _revoke_in(records: dict[str, KeyRecord], name: str, when: str) -> KeyRecord:
    """Replace the live record called ``name`` in ``records`` by its revoked copy; return it."""
    live = [record for record in records.values() if record.name == name and record.revoked is None]
    if not live:
        known = ", ".join(sorted(live_names(records))) or "none"
        raise ClientKeyError(f"no live key named {name!r} (live keys: {known})")
    revoked = live[0].model_copy(update={"revoked": when})
    records[revoked.key_id] = revoked
    return revoked
