"""Checking a client key on every request, cheaply, and noticing revocations within seconds.

Two caches make the hot path a dict lookup and a SHA-256:
- the store's records, re-read at most every ``ttl`` seconds (the revocation promise: a
  revoked key is refused by every gateway process at most ``ttl`` <= 5 s after the store
  changed -- each process re-reads on its own clock, no message between them is needed).
  The re-read starts in the background once the copy is ``ttl / 2`` old, and requests go on
  with the copy meanwhile; only a copy ``ttl`` old (a store read slower than ``ttl / 2``)
  makes requests wait. Before, every ``ttl`` all requests waited for the read -- a file on
  the local target, a modal.Dict round trip on Modal;
- pairs whose scrypt check passed (or failed), keyed by the record's hash, so a changed
  or revoked record invalidates them at the next re-read. Concurrent first requests with
  one key share a single scrypt run (a burst of sixteen used to run sixteen).

scrypt (~50 ms) runs in worker threads limited to ``_SCRYPT_THREADS`` at once, so a flood
of wrong secrets slows down only the callers who send them, never the event loop.
An unknown key id is refused without scrypt: key ids are not secret (``fleet keys list``
shows them), and skipping the hash keeps a flood of made-up keys cheap (see ``find``).

Scopes (``KeyRecord.scope``): every caller names the scope it serves -- model routes
"client", ``/metrics`` "admin" -- and a valid key of the other scope gets 403 (it is a
real key, used at the wrong door), after the same secret, revocation and expiry checks,
so an admin key is revoked within the same TTL and compared in the same constant time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
import anyio.to_thread

from modelfleet.gateway.keys import (
    KEY_PREFIX,
    KeyRecord,
    KeyScope,
    KeyStore,
    parse_key,
    secret_digest,
    secret_matches,
)

log = logging.getLogger(__name__)

_SCRYPT_THREADS = 2
_MAX_REMEMBERED = 10_000
_UNKNOWN_REREAD_S = 0.5


@dataclass(frozen=True)
class AuthFailure(Exception):
    """Why a request's key is refused: an HTTP status, a message for the client, an error code."""

    status: int
    message: str
    code: str


MISSING = AuthFailure(
    401,
    "missing API key: send Authorization: Bearer <fleet key> (create one with `fleet keys create NAME`)",
    "invalid_api_key",
)
MALFORMED = AuthFailure(
    401, f"malformed API key: fleet keys look like {KEY_PREFIX}<12 characters>-<40 characters>", "invalid_api_key"
)
INVALID = AuthFailure(401, "invalid API key", "invalid_api_key")


def wrong_scope(record: KeyRecord, wanted: KeyScope) -> AuthFailure:
    """403 for a valid key used where the other scope is needed, saying which key opens what."""
    if wanted == "admin":
        message = (
            f"API key {record.name!r} is a client key: the fleet's metrics need an admin key "
            "(create one with `fleet keys create NAME --admin`)"
        )
    else:
        message = f"API key {record.name!r} is an admin key: it opens /metrics only; call models with a client key"
    return AuthFailure(403, message, "wrong_key_scope")


class Authenticator:
    """Turns an ``Authorization`` header into the caller's ``KeyRecord``, or an ``AuthFailure``."""

    def __init__(self, store: KeyStore, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self._clock = clock
        self._records: dict[str, KeyRecord] = {}
        self._loaded_at: float | None = None
        self._refresh_lock = anyio.Lock()
        self._scrypt = anyio.CapacityLimiter(_SCRYPT_THREADS)
        # (key id, digest of the secret, record hash) -> whether scrypt said yes.
        self._checked: dict[tuple[str, bytes, str], bool] = {}
        # key id -> the copy (its read time) it was missing from.
        self._unknown: dict[str, float | None] = {}
        # Checks of a (key id, secret digest, hash) running now: later callers await the first one's.
        self._checking: dict[tuple[str, bytes, str], asyncio.Task[bool]] = {}
        self._background: asyncio.Task[None] | None = None

    async def records(self) -> dict[str, KeyRecord]:
        """The store's records as of at most ``ttl`` seconds ago (re-read in the background from ``ttl / 2``)."""
        age = None if self._loaded_at is None else self._clock() - self._loaded_at
        if age is None or age >= self.ttl:
            async with self._refresh_lock:
                # Another request may have refreshed while this one waited for the lock.
                if self._loaded_at is None or self._clock() - self._loaded_at >= self.ttl:
                    await self._load()
        elif age >= self.ttl / 2 and (self._background is None or self._background.done()):
            self._background = asyncio.get_running_loop().create_task(self._refresh(self._loaded_at))
        return self._records

    async def _refresh(self, seen_at: float | None) -> None:
        """The background re-read; a request that found the copy ``ttl`` old meanwhile waits for it (the lock)."""
        try:
            async with self._refresh_lock:
                if self._loaded_at == seen_at:
                    await self._load()
        except Exception as error:  # the copy stays; at ``ttl`` a request reads the store itself
            log.warning("key store re-read failed (%s); retrying", error.__class__.__name__)

    async def find(self, key_id: str) -> KeyRecord | None:
        """The record of ``key_id``; an id not in the copy makes the store be read again first.

        A key must work as soon as ``fleet keys create`` printed it, not a TTL later. Reads
        for unknown ids happen at most every ``_UNKNOWN_REREAD_S``: a request arriving sooner
        waits for the next one (so a flood of made-up ids costs one read per interval), and
        an id already missing from the current copy is refused at once.
        """
        records = await self.records()
        if key_id in records:
            return records[key_id]
        seen_at = self._loaded_at
        if self._unknown.get(key_id) == seen_at:
            return None
        async with self._refresh_lock:
            if self._loaded_at == seen_at:  # nobody read the store while this request waited
                wait = (seen_at or 0.0) + _UNKNOWN_REREAD_S - self._clock()
                if wait > 0:
                    await anyio.sleep(wait)
                await self._load()
        record = self._records.get(key_id)
        if record is None:
            if len(self._unknown) >= _MAX_REMEMBERED:
                self._unknown.clear()
            self._unknown[key_id] = self._loaded_at
        return record

    async def _load(self) -> None:
        started = self._clock()
        self._records = await anyio.to_thread.run_sync(self.store.load)
        self._loaded_at = started

    async def authenticate(self, authorization: str | None, scope: KeyScope = "client") -> KeyRecord:
        """The live, unexpired record of ``scope`` the header's key belongs to; raises ``AuthFailure`` otherwise
        (401 for a missing, unknown, wrong, revoked or expired key; 403 for a valid key of the other scope)."""
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise MISSING
        parsed = parse_key(value.strip())
        if parsed is None:
            raise MALFORMED
        key_id, secret = parsed
        record = await self.find(key_id)
        if record is None:
            raise INVALID
        if not await self._secret_ok(record, secret):
            raise INVALID
        if record.revoked is not None:
            raise AuthFailure(401, f"API key {record.name!r} was revoked at {record.revoked}", "key_revoked")
        today = datetime.now(UTC).date()
        if record.expired_on(today):
            raise AuthFailure(401, f"API key {record.name!r} expired after {record.limits.expires}", "key_expired")
        if record.scope != scope:
            raise wrong_scope(record, scope)
        return record

    async def _secret_ok(self, record: KeyRecord, secret: str) -> bool:
        remembered = (record.key_id, secret_digest(secret), record.hash)
        known = self._checked.get(remembered)
        if known is not None:
            return known
        check = self._checking.get(remembered)
        if check is None:
            # A task of its own, awaited through a shield: a caller hanging up never cancels the
            # check the others are waiting for.
            check = asyncio.get_running_loop().create_task(self._scrypt_check(remembered, record, secret))
            self._checking[remembered] = check
        return await asyncio.shield(check)

    async def _scrypt_check(self, remembered: tuple[str, bytes, str], record: KeyRecord, secret: str) -> bool:
        try:
            matches = await anyio.to_thread.run_sync(secret_matches, record, secret, limiter=self._scrypt)
        finally:
            del self._checking[remembered]
        if len(self._checked) >= _MAX_REMEMBERED:
            self._checked.clear()
        self._checked[remembered] = matches
        return matches
