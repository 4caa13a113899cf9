"""The usage ledger on Modal: every gateway container's counts in one ``modal.Dict``.

Why not the SQLite ``Ledger``: gateway containers share no disk, so a file in each
container's /tmp would give ``fleet usage`` nothing and make the daily-token and monthly-USD
quotas per container. A Dict is read and written "from anywhere, concurrently and in
parallel" (https://modal.com/docs/guide/dicts), but it has no atomic increment across
containers: two containers adding to one entry would lose one of the two additions.

So no entry has two writers. Each container keeps its own cumulative counts per (day, key
name, model) in memory and, at each flush, writes those rows whole (one ``update`` call)
under an entry named by the row *and its container id*; a rewrite replaces the container's
previous value for that row, never another container's. Readers (``rows``, the quota
totals, ``fleet usage``) read every entry (one ``items()`` call) and sum across containers.
Counts only: a row is named by the key's name, never a key, a prompt or a completion.

Reads follow demand. Listing the Dict costs in proportion to its entries (a month of rows
per container), and only the daily-token and monthly-USD quotas need the other containers'
totals. So a flush lists the Dict only while those quotas are in use -- ``tokens_on`` or
``cost_in_month`` asked within the last ``DEMAND_WINDOW_S`` -- and a gateway whose keys have
no such quota writes its rows and lists nothing (but for the daily touch below).

Quota overshoot: a container sees its own usage at once and the other containers' usage as
of its last read, so every other container's usage is up to about two flush intervals
(``ledger_flush_s``: theirs to write, ours to read) late. With N containers busy on one key,
a daily-token or monthly-USD limit can be exceeded by up to what the other N-1 containers
relay in that window -- as the local ledger, where other gateway processes are one flush late.
When those quotas are first asked after ``DEMAND_WINDOW_S`` without, the others' totals are as
old as the last read until the next flush (at most one interval): the requests this container
admits in that interval are the further overshoot.

Entry expiry: "An individual Dict entry will expire after 7 days of inactivity (no reads or
writes)" (https://modal.com/docs/reference/modal.Dict). A container rewrites only the rows
it counted, so a past day's rows are kept alive by being read: every running gateway reads
every entry at each flush, and once per UTC day each container also reads the current
month's entries one by one with ``get``, in a background thread (a read by the reference's plain terms, whereas
whether an ``items()`` listing counts is not documented). A fleet with no gateway container
for 7 days loses those rows: the month's cost and ``fleet usage`` then undercount (the
quotas fail open on what was lost); export ``fleet usage --format csv`` regularly where the
history matters. The Dict grows by one entry per (day, key, model, container); containers
come and go, so a long-lived fleet's Dict holds about a month of such entries per busy row.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, fields
from datetime import date
from typing import Any

from modelfleet.gateway.ledger import Counts, UsageRow

log = logging.getLogger(__name__)

# Set in every Modal container to the container's task id (read the same way by the
# installed client: modal/experimental/flash.py, ``os.environ["MODAL_TASK_ID"]``).
TASK_ID_ENV = "MODAL_TASK_ID"
PREFIX = "usage/"
_COUNT_NAMES = tuple(f.name for f in fields(Counts))
# How long after the last quota read of the totals a flush keeps listing the Dict.
DEMAND_WINDOW_S = 300.0

Row = tuple[str, str, str]  # day, key name, model


def container_id() -> str:
    """A writer id no other ledger has: the Modal task id (for a reader of the Dict) plus a random
    part, so a second ledger in one container -- or a restarted process -- never overwrites the
    cumulative rows of the first with its own smaller ones."""
    return f"{os.environ.get(TASK_ID_ENV) or 'proc'}-{uuid.uuid4().hex[:12]}"


def entry_name(row: Row, container: str) -> str:
    """The Dict key of ``row`` as written by ``container``: JSON, so a '/' in a name stays unambiguous."""
    return PREFIX + json.dumps([*row, container], separators=(",", ":"))


def entry_value(row: Row, container: str, counts: Counts) -> str:
    """The entry's JSON text (not a pickle: any client version reads it): where it belongs and its counts."""
    day, key, model = row
    return json.dumps({"day": day, "key": key, "model": model, "container": container, **asdict(counts)})


def parse_entry(name: object, value: object) -> tuple[Row, str, Counts] | None:
    """A usage entry's row, container and counts; None for an entry that is not one."""
    if not (isinstance(name, str) and name.startswith(PREFIX) and isinstance(value, str)):
        return None
    try:
        data = json.loads(value)
        row = (str(data["day"]), str(data["key"]), str(data["model"]))
        counts = Counts(**{n: type(getattr(Counts(), n))(data[n]) for n in _COUNT_NAMES})
        return row, str(data["container"]), counts
    except (ValueError, KeyError, TypeError):
        log.warning("usage ledger: skipped an unreadable entry (%d characters)", len(value))
        return None


class ModalLedger:
    """``UsageLedger`` over a named ``modal.Dict``: own rows written whole, everyone's summed on read."""

    def __init__(self, name: str, environment: str | None = None, *, container: str | None = None) -> None:
        self.name = name
        self.environment = environment
        self.container = container or container_id()
        self._dict: Any = None
        self._open_lock = threading.Lock()
        self._lock = threading.Lock()
        self._own: dict[Row, Counts] = defaultdict(Counts)
        self._dirty: set[Row] = set()
        self._others_day_tokens: dict[tuple[str, str], int] = {}
        self._others_month_cost: dict[tuple[str, str], float] = {}
        self._touched_on = ""
        self._asked_at: float | None = None  # when a quota last read the others' totals

    def _store(self) -> Any:
        import modal

        with self._open_lock:
            if self._dict is None:
                self._dict = modal.Dict.from_name(self.name, environment_name=self.environment, create_if_missing=True)
            return self._dict

    def count(self, day: date, key: str, model: str, counts: Counts) -> None:
        """Add one request's counts to this container's rows (written at the next flush)."""
        row = (day.isoformat(), key, model)
        with self._lock:
            self._own[row].add(counts)
            self._dirty.add(row)

    def flush(self, today: date) -> None:
        """Write this container's changed rows, then re-read the other containers' day and month totals.

        A Dict call that fails is logged (class name only) and retried at the next flush: the
        rows are cumulative, so a late write loses nothing, and a gateway keeps serving.
        """
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            writes = {
                entry_name(row, self.container): entry_value(row, self.container, self._own[row]) for row in dirty
            }
        wanted = self._asked_at is not None and time.monotonic() - self._asked_at < DEMAND_WINDOW_S
        try:
            if writes:
                self._store().update(writes)
            entries = list(self._store().items()) if wanted else None
        except Exception as error:  # the client's many network/server errors; never crash the gateway for a count
            log.warning(
                "usage ledger %s: Dict call failed (%s); retrying at the next flush",
                self.name,
                error.__class__.__name__,
            )
            with self._lock:
                self._dirty |= dirty
            return
        day, month = today.isoformat(), today.isoformat()[:7]
        month_entries = self._read_totals(entries, day, month) if entries is not None else None
        with self._lock:
            # Rows of past months are written and no quota reads them: keep a long-lived container small.
            for row in [r for r in self._own if r[0][:7] < month and r not in self._dirty]:
                del self._own[row]
        if self._touched_on != day:
            # One read per entry takes a while on a big month: in the background, not in the flush.
            args = (month, month_entries)
            threading.Thread(target=self._touch, args=args, name="ledger-touch", daemon=True).start()
            self._touched_on = day

    def _read_totals(self, entries: list[tuple[Any, Any]], day: str, month: str) -> list[str]:
        """Take the other containers' day and month totals from ``entries``; the names of this month's entries."""
        day_tokens: dict[tuple[str, str], int] = defaultdict(int)
        month_cost: dict[tuple[str, str], float] = defaultdict(float)
        month_entries: list[str] = []
        for name, value in entries:
            parsed = parse_entry(name, value)
            if parsed is None:
                continue
            (row_day, key, _), writer, counts = parsed
            if row_day.startswith(month):
                month_entries.append(name)
            if writer == self.container:
                continue
            if row_day == day:
                day_tokens[(day, key)] += counts.tokens
            if row_day.startswith(month) and row_day <= day:
                month_cost[(month, key)] += counts.cost_usd
        with self._lock:
            self._others_day_tokens, self._others_month_cost = dict(day_tokens), dict(month_cost)
        return month_entries

    def _touch(self, month: str, names: list[str] | None) -> None:
        # Once a day: read this month's entries one by one so none expires while a gateway runs
        # (listing them first when this flush did not: no quota asked for the totals).
        try:
            store = self._store()
            if names is None:
                names = [
                    name
                    for name, value in store.items()
                    if (parsed := parse_entry(name, value)) is not None and parsed[0][0].startswith(month)
                ]
            for name in names:
                store.get(name)
        except Exception as error:  # as in flush: a failed touch is retried the next day, never fatal
            log.warning("usage ledger %s: touch failed (%s)", self.name, error.__class__.__name__)

    def tokens_on(self, day: date, key: str) -> int:
        """Tokens ``key`` used on ``day``: this container's now, the others' as of the last flush."""
        text = day.isoformat()
        self._asked_at = time.monotonic()
        with self._lock:
            own = sum(c.tokens for (d, k, _), c in self._own.items() if d == text and k == key)
            return own + self._others_day_tokens.get((text, key), 0)

    def cost_in_month(self, day: date, key: str) -> float:
        """USD ``key`` spent in ``day``'s calendar month, counted like ``tokens_on``."""
        month = day.isoformat()[:7]
        self._asked_at = time.monotonic()
        with self._lock:
            own = sum(c.cost_usd for (d, k, _), c in self._own.items() if d.startswith(month) and k == key)
            return own + self._others_month_cost.get((month, key), 0.0)

    def rows(self, *, since: date | None = None, key: str | None = None) -> list[UsageRow]:
        """Written rows of every container, summed per day, key and model, oldest day first."""
        totals: dict[Row, Counts] = defaultdict(Counts)
        for name, value in self._store().items():
            parsed = parse_entry(name, value)
            if parsed is None:
                continue
            row, _, counts = parsed
            if (since is None or row[0] >= since.isoformat()) and (key is None or row[1] == key):
                totals[row].add(counts)
        return [UsageRow(*row, counts) for row, counts in sorted(totals.items())]
