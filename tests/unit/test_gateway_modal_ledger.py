"""ModalLedger's own rules, over an in-memory stand-in for the modal.Dict (the network boundary).

The real client against the loopback API is in tests/contract/test_gateway_modal_ledger.py;
here: a failed Dict call loses nothing, other containers' usage arrives one flush late,
names with '/' stay apart, and past months leave a long-lived container's memory.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from modelfleet.gateway import modal_ledger
from modelfleet.gateway.ledger import Counts
from modelfleet.gateway.modal_ledger import ModalLedger, entry_name
from tests.support.waiting import wait_until

DAY = date(2026, 12, 2)


class DictStandIn:
    """update/items/get of a modal.Dict in memory; ``failures`` calls raise ConnectionError first."""

    def __init__(self) -> None:
        self.data: dict[Any, Any] = {}
        self.failures = 0
        self.got: list[Any] = []
        self.listed = 0

    def _maybe_fail(self) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("loopback: unreachable")

    def update(self, other: dict[Any, Any]) -> None:
        self._maybe_fail()
        self.data.update(other)

    def items(self) -> list[tuple[Any, Any]]:
        self._maybe_fail()
        self.listed += 1
        return list(self.data.items())

    def get(self, key: Any) -> Any:
        self._maybe_fail()
        self.got.append(key)
        return self.data.get(key)


def ledger_on(store: DictStandIn, container: str) -> ModalLedger:
    ledger = ModalLedger("usage", container=container)
    ledger._dict = store  # the stand-in replaces modal.Dict.from_name's object
    return ledger


def test_a_failed_dict_call_is_retried_at_the_next_flush_and_loses_nothing() -> None:
    store = DictStandIn()
    ledger = ledger_on(store, "a")
    ledger.count(DAY, "alice", "m", Counts(requests=1, prompt_tokens=4))
    store.failures = 1
    ledger.flush(DAY)  # does not raise: a gateway keeps serving
    assert store.data == {}
    ledger.count(DAY, "alice", "m", Counts(requests=1, prompt_tokens=6))
    ledger.flush(DAY)
    [row] = ledger.rows()
    assert (row.counts.requests, row.counts.prompt_tokens) == (2, 10)


def test_other_containers_usage_reaches_the_quotas_at_the_next_flush() -> None:
    store = DictStandIn()
    first, second = ledger_on(store, "a"), ledger_on(store, "b")
    first.count(DAY, "alice", "m", Counts(prompt_tokens=30, cost_usd=1.5))
    assert first.tokens_on(DAY, "alice") == 30  # its own: at once
    assert second.tokens_on(DAY, "alice") == 0
    first.flush(DAY)
    assert second.tokens_on(DAY, "alice") == 0  # the overshoot window: until the reader flushes
    second.flush(DAY)
    assert second.tokens_on(DAY, "alice") == 30
    assert second.cost_in_month(date(2026, 12, 31), "alice") == 1.5
    assert second.cost_in_month(date(2027, 1, 1), "alice") == 0.0
    # Flushing again rewrites a container's cumulative row, never adds it twice.
    first.flush(DAY)
    second.flush(DAY)
    assert second.tokens_on(DAY, "alice") == 30


def test_names_with_slashes_do_not_collide() -> None:
    assert entry_name(("2026-12-02", "a/b", "c"), "x") != entry_name(("2026-12-02", "a", "b/c"), "x")
    store = DictStandIn()
    ledger = ledger_on(store, "a")
    ledger.count(DAY, "a/b", "c", Counts(requests=1))
    ledger.count(DAY, "a", "b/c", Counts(requests=2))
    ledger.flush(DAY)
    assert [(r.key, r.model, r.counts.requests) for r in ledger.rows()] == [("a", "b/c", 2), ("a/b", "c", 1)]


def test_past_months_leave_memory_but_stay_in_the_dict() -> None:
    store = DictStandIn()
    ledger = ledger_on(store, "a")
    ledger.count(date(2026, 11, 30), "alice", "m", Counts(requests=1))
    ledger.flush(date(2026, 12, 1))
    assert ledger._own == {}
    assert [r.day for r in ledger.rows()] == ["2026-11-30"]


def test_an_unreadable_entry_is_skipped_and_entries_hold_counts_only() -> None:
    store = DictStandIn()
    store.data["usage/garbage"] = "not json"
    store.data["key/abc"] = "{}"  # not a usage entry
    ledger = ledger_on(store, "a")
    ledger.count(DAY, "alice", "m", Counts(requests=1))
    ledger.flush(DAY)
    assert [r.key for r in ledger.rows()] == ["alice"]
    written = [json.loads(v) for k, v in store.data.items() if k.startswith("usage/[")]
    assert [sorted(v) for v in written] == [sorted(["day", "key", "model", "container", *Counts().__dict__])]


def test_the_first_flush_of_each_day_reads_every_entry_of_the_month_so_none_expires() -> None:
    store = DictStandIn()
    writer, reader = ledger_on(store, "a"), ledger_on(store, "b")
    writer.count(date(2026, 11, 30), "alice", "m", Counts(requests=1))
    writer.count(date(2026, 12, 1), "alice", "m", Counts(requests=1))
    writer.flush(date(2026, 12, 1))
    december = entry_name(("2026-12-01", "alice", "m"), "a")
    assert wait_until(lambda: december in store.got, 5.0)  # the writer's own first flush of the day
    store.got.clear()
    reader.flush(DAY)
    assert wait_until(lambda: december in store.got, 5.0)  # and the reader's, of another container's entry
    assert entry_name(("2026-11-30", "alice", "m"), "a") not in store.got  # a past month is not kept alive
    reads = len(store.got)
    reader.flush(DAY)  # the same day again: no second round of reads
    assert not wait_until(lambda: len(store.got) > reads, 0.5)


def test_a_flush_lists_the_dict_only_while_a_quota_reads_the_others_totals(monkeypatch: pytest.MonkeyPatch) -> None:
    store = DictStandIn()
    ledger = ledger_on(store, "a")
    ledger._touched_on = DAY.isoformat()  # today's touch done: count the flushes' own listings
    ledger.count(DAY, "alice", "m", Counts(requests=1, prompt_tokens=4))
    ledger.flush(DAY)
    ledger.flush(DAY)
    assert store.listed == 0  # no key has a daily or monthly quota: nothing needs the others' rows
    assert len(store.data) == 1  # the rows are written all the same
    ledger.tokens_on(DAY, "alice")  # a daily quota asks
    ledger.flush(DAY)
    assert store.listed == 1
    # Long after the last ask, flushes stop listing again.
    asked = ledger._asked_at
    assert asked is not None
    monkeypatch.setattr(modal_ledger.time, "monotonic", lambda: asked + modal_ledger.DEMAND_WINDOW_S + 1)
    ledger.flush(DAY)
    assert store.listed == 1


def test_the_daily_touch_lists_the_month_itself_when_no_quota_did() -> None:
    store = DictStandIn()
    writer = ledger_on(store, "a")
    writer.count(date(2026, 11, 30), "alice", "m", Counts(requests=1))
    writer.count(DAY, "alice", "m", Counts(requests=1))
    writer.flush(DAY)
    december = entry_name((DAY.isoformat(), "alice", "m"), "a")
    assert wait_until(lambda: december in store.got, 5.0)
    assert entry_name(("2026-11-30", "alice", "m"), "a") not in store.got
    assert store.listed == 1  # the touch's own listing, once for the day
