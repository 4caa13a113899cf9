"""The usage ledger: counts per key, model and day, shared by processes through one SQLite file; fleet usage."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from modelfleet.cli.app import app
from modelfleet.gateway.ledger import COLUMNS, Counts, Ledger

runner = CliRunner()
DAY = date(2026, 12, 2)


def test_counts_add_up_per_key_model_and_day_and_quotas_see_them_before_the_flush(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "usage.sqlite")
    ledger.count(DAY, "alice", "m", Counts(requests=1, prompt_tokens=5, completion_tokens=3, cost_usd=0.5))
    ledger.count(DAY, "alice", "m", Counts(requests=1, prompt_tokens=1, completion_tokens=1, cost_usd=0.25))
    ledger.count(date(2026, 11, 30), "alice", "m", Counts(requests=1, prompt_tokens=100, cost_usd=9))
    assert ledger.tokens_on(DAY, "alice") == 10 and ledger.cost_in_month(DAY, "alice") == 0.75
    assert ledger.rows() == []
    ledger.flush(DAY)
    assert ledger.tokens_on(DAY, "alice") == 10 and ledger.cost_in_month(DAY, "alice") == 0.75
    rows = ledger.rows()
    assert [(r.day, r.counts.requests, r.counts.tokens) for r in rows] == [
        ("2026-11-30", 1, 100),
        ("2026-12-02", 2, 10),
    ]
    assert [r.day for r in ledger.rows(since=DAY)] == ["2026-12-02"]
    assert ledger.rows(key="bob") == []


def test_two_processes_see_each_others_usage_after_their_flushes(tmp_path: Path) -> None:
    first, second = Ledger(tmp_path / "usage.sqlite"), Ledger(tmp_path / "usage.sqlite")
    first.count(DAY, "alice", "m", Counts(requests=1, prompt_tokens=4))
    second.count(DAY, "alice", "m", Counts(requests=1, prompt_tokens=6))
    first.flush(DAY)
    second.flush(DAY)
    first.flush(DAY)
    assert first.tokens_on(DAY, "alice") == second.tokens_on(DAY, "alice") == 10


def test_fleet_usage_prints_table_json_and_csv_and_refuses_other_formats(fleet_repo: Path) -> None:
    ledger = Ledger(fleet_repo / ".fleet" / "gateway-usage.sqlite")
    ledger.count(DAY, "alice", "m", Counts(requests=2, errors=1, prompt_tokens=5, completion_tokens=3))
    ledger.count(DAY, "bob", "m", Counts(requests=1, rejected=4))
    ledger.flush(DAY)
    as_json = json.loads(runner.invoke(app, ["usage", "--format", "json", "--key", "alice"]).output)
    assert as_json == [
        {
            "day": "2026-12-02",
            "key": "alice",
            "model": "m",
            "requests": 2,
            "errors": 1,
            "rejected": 0,
            "prompt_tokens": 5,
            "completion_tokens": 3,
            "gpu_seconds": 0.0,
            "cost_usd": 0.0,
        }
    ]
    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["usage", "--format", "csv"]).output)))
    assert [r["key"] for r in rows] == ["alice", "bob"] and list(rows[0]) == list(COLUMNS)
    table = runner.invoke(app, ["usage", "--since", "2026-12-03"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "alice" not in table.output
    assert runner.invoke(app, ["usage", "--format", "xml"]).exit_code == 2
