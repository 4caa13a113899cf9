"""Proxy-auth tokens the local edge checks: Modal's shape, only hashes on disk.

A token is a key id (``wk-...``) and a secret (``ws-...``), like Modal's workspace
proxy tokens, so one client configuration works against both targets. The secret is
shown once at creation; the store keeps a salted scrypt hash, compared in constant time.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
import string
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from modelfleet.errors import FleetError
from modelfleet.files import SECRET_MODE, write_atomic

KEY_PREFIX = "wk-"
SECRET_PREFIX = "ws-"
_ALPHABET = string.ascii_letters + string.digits
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class TokenError(FleetError):
    """A token operation cannot be done (unknown name, duplicate name, unreadable store)."""


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: never its secret."""

    name: str
    key: str
    created: str


@dataclass(frozen=True)
class Credentials:
    """A proxy-auth token (id ``wk-...``, secret ``ws-...``), sent one way only: ``Authorization: Bearer``.

    The client half of the tokens contract (``parse_credentials`` is the server half), kept here
    so the HTTP-only post-deploy checks need nothing from the targets.

    Modal takes either the ``Modal-Key`` + ``Modal-Secret`` pair or the single header
    ``Authorization: Bearer wk-....ws-...`` (``modal workspace proxy-tokens create --json``
    prints both; modal/cli/workspace.py). Sending both, or the pair next to an unrelated
    Bearer value, leaves which one counts to the proxy. The Bearer form is the one the
    openai SDK sends by itself from ``api_key``, so every client here uses it.
    """

    key: str
    secret: str

    @property
    def api_key(self) -> str:
        """``wk-....ws-...``: what ``openai.OpenAI(api_key=...)`` needs to send the Bearer form."""
        return f"{self.key}.{self.secret}"

    def headers(self) -> dict[str, str]:
        """The one proxy-auth header; the local edge accepts exactly what Modal does."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def __repr__(self) -> str:
        return f"Credentials(key={self.key!r}, secret='***')"


def parse_credentials(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """(key, secret) from ``Modal-Key`` + ``Modal-Secret`` or ``Authorization: Bearer <key>.<secret>``.

    The same two forms Modal's proxy auth accepts, so one client configuration works
    against both targets. ``headers`` must look names up case-insensitively (Starlette's
    ``Headers`` does) or hold lower-case names.
    """
    key, secret = headers.get("modal-key"), headers.get("modal-secret")
    if key and secret:
        return key, secret
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "bearer" or not value.startswith(KEY_PREFIX):
        return None
    # Key ids hold no dot; the secret starts after the first one.
    key, dot, secret = value.partition(".")
    return (key, secret) if dot and secret else None


class TokenStore:
    """A JSON file of token hashes (mode 0600), rewritten atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # scrypt is deliberately slow (~50 ms); an edge checks every request, so pairs
        # already verified are remembered until the file changes (a revoke rewrites it).
        self._verified: set[tuple[str, bytes]] = set()
        self._verified_version: tuple[int, int, int] | None = None

    def create(self, name: str) -> tuple[str, str]:
        """A new (key, secret); only the hash is stored. The secret cannot be recovered later."""
        if not name or len(name) > 64:
            raise TokenError("a token name must be 1..64 characters")
        with self._locked():
            tokens = self._read()
            if any(t["name"] == name for t in tokens.values()):
                raise TokenError(f"a token named {name!r} exists; revoke it first or pick another name")
            # Letters and digits only: no "." (the Bearer form splits on it) and nothing to escape.
            key = KEY_PREFIX + _random_text(16)
            secret = SECRET_PREFIX + _random_text(32)
            salt = secrets.token_bytes(16)
            tokens[key] = {
                "name": name,
                "salt": salt.hex(),
                "hash": _hash(secret, salt).hex(),
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            self._write(tokens)
        return key, secret

    def list(self) -> list[TokenInfo]:
        """Every token's name, key id and creation time."""
        return [
            TokenInfo(t["name"], key, t["created"])
            for key, t in sorted(self._read().items(), key=lambda i: i[1]["created"])
        ]

    def revoke(self, name: str) -> None:
        """Delete a token by name; edges reject it from the next request on."""
        with self._locked():
            tokens = self._read()
            keys = [key for key, t in tokens.items() if t["name"] == name]
            if not keys:
                known = ", ".join(sorted(t["name"] for t in tokens.values())) or "none"
                raise TokenError(f"no token named {name!r} (known: {known})")
            for key in keys:
                del tokens[key]
            self._write(tokens)

    def verify(self, key: str, secret: str) -> bool:
        """Whether the pair is a live token (constant-time comparison of the salted hash)."""
        if self.remembered(key, secret):
            return True
        if self._check(key, secret):
            self._verified.add((key, _digest(secret)))
            return True
        return False

    def remembered(self, key: str, secret: str) -> bool:
        """Whether the pair was verified since the store last changed: the cheap path for every request."""
        version = self._version()
        if version != self._verified_version:
            # Any rewrite (a revoke, a new token) forgets everything: revoked tokens fail at once.
            self._verified, self._verified_version = set(), version
        return (key, _digest(secret)) in self._verified

    def _version(self) -> tuple[int, int, int] | None:
        # Every write replaces the file (new inode), so this changes with each change.
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _check(self, key: str, secret: str) -> bool:
        entry = self._read().get(key)
        if entry is None:
            # Spend the same time as a real check, so timing does not reveal which keys exist.
            hmac.compare_digest(_hash(secret, b"\0" * 16), b"\0" * 32)
            return False
        expected = bytes.fromhex(entry["hash"])
        return hmac.compare_digest(_hash(secret, bytes.fromhex(entry["salt"])), expected)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Read-modify-write under a lock: two `fleet token create` at once must not lose one.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as error:
            raise TokenError(
                f"{self.path}: token store unreadable ({error.__class__.__name__}); fix or delete it"
            ) from None
        return dict(data.get("tokens", {}))

    def _write(self, tokens: dict[str, dict[str, str]]) -> None:
        write_atomic(self.path, json.dumps({"tokens": tokens}, indent=2), mode=SECRET_MODE)


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _digest(secret: str) -> bytes:
    # Only a digest of a verified secret is held in memory, never the secret itself.
    return hashlib.sha256(secret.encode()).digest()


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
