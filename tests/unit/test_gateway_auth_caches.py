"""The Authenticator's caches under load: store re-reads off the request path, one scrypt per burst."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from modelfleet.gateway import keys
from modelfleet.gateway.auth import Authenticator
from modelfleet.gateway.key_stores import LocalKeyStore
from modelfleet.gateway.keys import KeyLimits, KeyRecord, new_key, now_text
from tests.unit.test_gateway_keys import Clock


class HeldStore:
    """A LocalKeyStore whose reads after the first wait until ``release`` is set (a slow modal.Dict)."""

    def __init__(self, path: Path) -> None:
        self.local = LocalKeyStore(path)
        self.release = threading.Event()
        self.reads_started = 0
        self.reads_done = 0

    def load(self) -> dict[str, KeyRecord]:
        self.reads_started += 1
        if self.reads_started > 1:
            assert self.release.wait(10)
        records = self.local.load()
        self.reads_done += 1
        return records


def test_a_copy_half_the_ttl_old_is_reread_in_the_background_while_requests_go_on(tmp_path: Path) -> None:
    store = HeldStore(tmp_path / "keys.json")
    record, key = new_key("alice", KeyLimits())
    store.local.add(record)
    clock = Clock()
    auth = Authenticator(store, ttl=2, clock=clock)  # type: ignore[arg-type]

    async def scenario() -> list[str]:
        seen = [(await auth.authenticate(f"Bearer {key}")).name]  # the first read: waited for
        store.local.revoke("alice", now_text())
        clock.now = 1.0  # half the TTL: a re-read starts, this request does not wait for it
        seen.append((await auth.authenticate(f"Bearer {key}")).name)
        for _ in range(200):  # the background re-read starts...
            if store.reads_started == 2:
                break
            await asyncio.sleep(0.01)
        assert (store.reads_started, store.reads_done) == (2, 1)  # ...and is held: the request did not wait
        store.release.set()
        for _ in range(200):
            if store.reads_done == 2:
                break
            await asyncio.sleep(0.01)
        clock.now = 1.5
        try:
            await auth.authenticate(f"Bearer {key}")
        except Exception as failure:  # the background read brought the revocation
            seen.append(getattr(failure, "code", repr(failure)))
        return seen

    assert asyncio.run(scenario()) == ["alice", "alice", "key_revoked"]


def test_a_burst_of_first_requests_with_one_key_runs_scrypt_once(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store = LocalKeyStore(tmp_path / "keys.json")
    record, key = new_key("alice", KeyLimits())
    store.add(record)
    runs: list[str] = []
    real = keys.secret_matches

    def counted(record: KeyRecord, secret: str) -> bool:
        runs.append(record.name)
        return real(record, secret)

    monkeypatch.setattr("modelfleet.gateway.auth.secret_matches", counted)
    auth = Authenticator(store, ttl=2)

    async def burst() -> list[str]:
        found = await asyncio.gather(*(auth.authenticate(f"Bearer {key}") for _ in range(16)))
        return [r.name for r in found]

    assert asyncio.run(burst()) == ["alice"] * 16
    assert runs == ["alice"]
