"""The usage ledger: per key name, per model, per UTC day -- counts only.

What is kept: requests relayed, errors (a model's non-2xx answer or a broken stream),
requests refused by a quota, prompt and completion tokens (vLLM's ``usage``), GPU-seconds
and their cost. Never a prompt, a completion, a key or a key id: a row is named by the
key's name, which its owner chose.

SQLite (stdlib) in WAL mode, so several local gateway processes and ``fleet usage`` share
one file. Counting is in memory and written every ``flush_s`` seconds in one transaction
(a write per request would put an fsync on every request's path); the totals the daily
and monthly quotas read are re-read at each flush, so a gateway sees the others' usage
within about one flush interval.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import date
from pathlib import Path
from typing import Protocol

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    day TEXT NOT NULL, key TEXT NOT NULL, model TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0, rejected INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
    gpu_seconds REAL NOT NULL DEFAULT 0, cost_usd REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (day, key, model)
)
"""
_COUNTS = ("requests", "errors", "rejected", "prompt_tokens", "completion_tokens", "gpu_seconds", "cost_usd")
_UPSERT = (
    f"INSERT INTO usage (day, key, model, {', '.join(_COUNTS)}) VALUES (?, ?, ?, {', '.join('?' for _ in _COUNTS)}) "
    "ON CONFLICT (day, key, model) DO UPDATE SET " + ", ".join(f"{c} = {c} + excluded.{c}" for c in _COUNTS)
)


@dataclass
class Counts:
    """What one request (or one row) adds up to."""

    requests: int = 0
    errors: int = 0
    rejected: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    gpu_seconds: float = 0.0
    cost_usd: float = 0.0

    def add(self, other: Counts) -> None:
        """Add ``other`` into this one."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class UsageRow:
    """One ledger row: a day, a key name, a model, and its counts."""

    day: str
    key: str
    model: str
    counts: Counts

    def as_dict(self) -> dict[str, object]:
        """Flat JSON/CSV form."""
        return {"day": self.day, "key": self.key, "model": self.model, **asdict(self.counts)}


COLUMNS = ("day", "key", "model", *(f.name for f in fields(Counts)))


class UsageLedger(Protocol):
    """What the gateway needs of a ledger; ``Ledger`` (SQLite) is the local one.

    A gateway on Modal runs in containers that share no disk and come and go, so a shared
    implementation (one writer behind a modal.Queue, or counters in a modal.Dict) keeps the
    same five methods.
    """

    def count(self, day: date, key: str, model: str, counts: Counts) -> None:
        """Add one request's counts."""
        ...

    def flush(self, today: date) -> None:
        """Write what was counted; refresh the totals quotas read (called every ``ledger_flush_s``)."""
        ...

    def tokens_on(self, day: date, key: str) -> int:
        """Tokens ``key`` used on ``day``."""
        ...

    def cost_in_month(self, day: date, key: str) -> float:
        """USD ``key`` spent in ``day``'s month."""
        ...

    def rows(self, *, since: date | None = None, key: str | None = None) -> list[UsageRow]:
        """Written rows, oldest day first."""
        ...


class Ledger:
    """Counts usage in memory, writes it to SQLite, answers the quotas' day and month totals."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, str], Counts] = defaultdict(Counts)
        self._flushing: dict[tuple[str, str, str], Counts] = {}
        self._day_tokens: dict[tuple[str, str], int] = {}
        self._month_cost: dict[tuple[str, str], float] = {}
        self._tracked_day = ""
        self._tracked_month = ""
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One short-lived connection per use: cheap with SQLite, and safe from any thread.
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def count(self, day: date, key: str, model: str, counts: Counts) -> None:
        """Add one request's counts (in memory until the next flush)."""
        with self._lock:
            self._pending[(day.isoformat(), key, model)].add(counts)

    def flush(self, today: date) -> None:
        """Write what was counted, then re-read today's tokens and this month's cost per key."""
        with self._lock:
            self._flushing, self._pending = dict(self._pending), defaultdict(Counts)
        rows = [(*where, *(getattr(c, n) for n in _COUNTS)) for where, c in self._flushing.items()]
        with self._connect() as db:
            if rows:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(_UPSERT, rows)
                db.execute("COMMIT")
            day, month_start = today.isoformat(), today.replace(day=1).isoformat()
            day_tokens = db.execute(
                "SELECT key, SUM(prompt_tokens + completion_tokens) FROM usage WHERE day = ? GROUP BY key", (day,)
            ).fetchall()
            month_cost = db.execute(
                "SELECT key, SUM(cost_usd) FROM usage WHERE day >= ? AND day <= ? GROUP BY key", (month_start, day)
            ).fetchall()
        with self._lock:
            self._day_tokens = {(day, key): int(total) for key, total in day_tokens}
            self._month_cost = {(day[:7], key): float(total) for key, total in month_cost}
            self._tracked_day, self._tracked_month = day, day[:7]
            self._flushing = {}

    def tokens_on(self, day: date, key: str) -> int:
        """Tokens ``key`` used on ``day``: written rows as of the last flush plus what is counted since."""
        text = day.isoformat()
        with self._lock:
            total = self._day_tokens.get((text, key), 0) if text == self._tracked_day else 0
            for source in (self._pending, self._flushing):
                total += sum(c.tokens for (d, k, _), c in source.items() if d == text and k == key)
        return total

    def cost_in_month(self, day: date, key: str) -> float:
        """USD ``key`` spent in ``day``'s calendar month, counted like ``tokens_on``."""
        month = day.isoformat()[:7]
        with self._lock:
            total = self._month_cost.get((month, key), 0.0) if month == self._tracked_month else 0.0
            for source in (self._pending, self._flushing):
                total += sum(c.cost_usd for (d, k, _), c in source.items() if d.startswith(month) and k == key)
        return total

    def rows(self, *, since: date | None = None, key: str | None = None) -> list[UsageRow]:
        """Written rows, oldest day first (call ``flush`` first to include what is counted in memory)."""
        query = "SELECT day, key, model, " + ", ".join(_COUNTS) + " FROM usage WHERE 1 = 1"
        args: list[str] = []
        if since is not None:
            query, args = query + " AND day >= ?", [*args, since.isoformat()]
        if key is not None:
            query, args = query + " AND key = ?", [*args, key]
        with self._connect() as db:
            found = db.execute(query + " ORDER BY day, key, model", args).fetchall()
        return [UsageRow(day, k, model, Counts(*values)) for day, k, model, *values in found]
