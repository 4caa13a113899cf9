"""Client keys of the gateway: what a key may do, how it looks, and the store protocol.

A client key is ``fk-<id>-<secret>``: the id (12 letters/digits) finds the record without
trying every hash, the secret (40 letters/digits, ~238 bits) is shown once and only its
salted scrypt hash is kept -- the token store's rules, with its own hashing helpers
(``modelfleet.runtime.tokens``), so both stores hash and compare the same way. The key
goes in ``Authorization: Bearer``, which is what the openai SDK sends for ``api_key``.

A revoked key stays in the store, marked, so ``fleet keys list`` shows when it ended and
a client holding it is told it was revoked rather than that it never existed.

A key has a scope: "client" keys call models (and are limited by quotas); an "admin" key
(``fleet keys create NAME --admin``) opens only the gateway's ``/metrics`` -- the fleet's
figures are the operator's -- and calls no model: the credential a Prometheus server holds
should not be able to spend GPU time, and a client key must not read the fleet's figures.
Records written before scopes existed have no ``scope`` field and load as client keys.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import UTC, date, datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from modelfleet.errors import FleetError
from modelfleet.runtime import tokens as token_hashing

KEY_PREFIX = "fk-"
ID_LENGTH = 12
SECRET_LENGTH = 40
_KEY = re.compile(rf"^{KEY_PREFIX}([A-Za-z0-9]{{{ID_LENGTH}}})-([A-Za-z0-9]{{{SECRET_LENGTH}}})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

KeyScope = Literal["client", "admin"]


class ClientKeyError(FleetError):
    """A key operation cannot be done (bad or duplicate name, unknown key, unreadable store)."""


class KeyLimits(BaseModel):
    """What a key may use: its models and quotas (None: no limit of that kind)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: tuple[str, ...] | None = Field(default=None, description="Served names or aliases allowed; None: all.")
    rpm: int | None = Field(default=None, ge=1, description="Requests per minute (moving window).")
    tpm: int | None = Field(default=None, ge=1, description="Tokens per minute (moving window).")
    daily_tokens: int | None = Field(default=None, ge=1, description="Prompt + completion tokens per UTC day.")
    monthly_usd: float | None = Field(default=None, gt=0, description="USD of GPU time per calendar month (UTC).")
    expires: date | None = Field(default=None, description="Last day the key works (UTC); None: no end.")


class KeyRecord(BaseModel):
    """One stored key: its hash, never its secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    key_id: str
    salt: str = Field(description="hex")
    hash: str = Field(description="hex scrypt of the secret")
    created: str
    limits: KeyLimits = Field(default_factory=KeyLimits)
    revoked: str | None = Field(default=None, description="When the key was revoked (ISO time); None: live.")
    scope: KeyScope = Field(
        default="client",
        description="client: calls models within its limits; admin: opens the gateway's /metrics only, no model.",
    )

    def expired_on(self, today: date) -> bool:
        """Whether the key's last day is before ``today``."""
        return self.limits.expires is not None and today > self.limits.expires


class KeyStore(Protocol):
    """Where key records live; every gateway process reads the same one.

    ``load`` is called at most every ``key_cache_ttl_s`` per gateway process (from a worker
    thread), so it may be a network call; ``add`` and ``revoke`` come from ``fleet keys``.
    """

    def load(self) -> dict[str, KeyRecord]:
        """Every record by key id, revoked ones included."""
        ...

    def add(self, record: KeyRecord) -> None:
        """Store a new record; raises ``ClientKeyError`` if a live key has the same name."""
        ...

    def revoke(self, name: str, when: str) -> KeyRecord:
        """Mark the live key called ``name`` revoked at ``when``; raises ``ClientKeyError`` if there is none."""
        ...


def new_key(name: str, limits: KeyLimits, scope: KeyScope = "client") -> tuple[KeyRecord, str]:
    """A fresh record and the key text to show once (the record holds only the hash)."""
    if not _NAME.match(name):
        raise ClientKeyError(
            f"key name {name!r}: use 1..64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if scope == "admin" and limits.model_dump(exclude={"expires"}, exclude_defaults=True):
        raise ClientKeyError(
            f"key {name!r}: an admin key opens /metrics only and calls no model; "
            "--models/--rpm/--tpm/--daily-tokens/--monthly-usd apply to client keys (only --expires applies)"
        )
    key_id = token_hashing._random_text(ID_LENGTH)
    secret = token_hashing._random_text(SECRET_LENGTH)
    salt = secrets.token_bytes(16)
    record = KeyRecord(
        name=name,
        key_id=key_id,
        salt=salt.hex(),
        hash=token_hashing._hash(secret, salt).hex(),
        created=now_text(),
        limits=limits,
        scope=scope,
    )
    return record, f"{KEY_PREFIX}{key_id}-{secret}"


def parse_key(text: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    match = _KEY.match(text)
    return (match.group(1), match.group(2)) if match else None


def secret_matches(record: KeyRecord, secret: str) -> bool:
    """Constant-time comparison of the secret's salted hash with the record's (slow: scrypt)."""
    return hmac.compare_digest(token_hashing._hash(secret, bytes.fromhex(record.salt)), bytes.fromhex(record.hash))


def secret_digest(secret: str) -> bytes:
    """A fast digest of a secret, to remember verified pairs without holding the secret."""
    return token_hashing._digest(secret)


def live_names(records: dict[str, KeyRecord]) -> set[str]:
    """Names of keys not revoked."""
    return {record.name for record in records.values() if record.revoked is None}


def now_text() -> str:
    """The current UTC time as stored in records."""
    return datetime.now(UTC).isoformat(timespec="seconds")
