"""The snapshot loop's decisions against a real HTTP endpoint the test scripts.

The endpoint (``FakeEndpoint``) reports each boot's kind and seconds in its /health
JSON, answers 503 while "booting", and streams chat answers; ``cold_start()`` plays a
scale-to-zero. The loop runs with the real HTTP probe, so what is recorded is what
came over the wire.
"""

from __future__ import annotations

import pytest

from modelfleet.errors import FleetError
from modelfleet.postdeploy.probe import probe_boot
from modelfleet.postdeploy.snapshot import SnapshotReport, build_snapshot
from modelfleet.runtime.tokens import Credentials
from tests.unit.test_smoke_endpoint import KEY, SECRET, SERVED, Behaviour, FakeEndpoint


def run_loop(
    endpoint: FakeEndpoint,
    *,
    snapshots_enabled: bool = True,
    max_tries: int = 5,
    credentials: Credentials = Credentials(KEY, SECRET),
    timeout: float = 10.0,
) -> SnapshotReport:
    return build_snapshot(
        lambda: probe_boot(endpoint.url, credentials, SERVED, timeout=timeout),
        endpoint.cold_start,
        snapshots_enabled=snapshots_enabled,
        max_tries=max_tries,
    )


def test_the_loop_stops_at_the_first_restore_and_records_every_try() -> None:
    behaviour = Behaviour(boots=["cold", "cold", "restore", "restore"], boot_seconds=[95.5, 88.0, 4.2, 4.0])
    with FakeEndpoint(behaviour) as endpoint:
        report = run_loop(endpoint)
    assert report.result == "restored" and report.ok
    assert endpoint.cold_starts == 3
    assert [(t.attempt, t.boot, t.boot_seconds) for t in report.tries] == [
        (1, "cold", 95.5),
        (2, "cold", 88.0),
        (3, "restore", 4.2),
    ]
    assert all(t.ttft_seconds is not None and t.ttft_seconds > 0 and not t.error for t in report.tries)
    assert report.cold_start is report.tries[0] and report.restored_start is report.tries[2]
    assert (report.cold_start_boot_seconds, report.restored_boot_seconds) == (95.5, 4.2)
    assert report.model_dump()["cold_start_boot_seconds"] == 95.5  # derived values are written for readers


def test_time_to_first_token_includes_the_wait_while_the_endpoint_boots() -> None:
    behaviour = Behaviour(boots=["cold", "restore"], boot_delay=0.6)
    with FakeEndpoint(behaviour) as endpoint:
        report = run_loop(endpoint)
    assert [t.boot for t in report.tries] == ["cold", "restore"]
    assert all(t.ttft_seconds is not None and t.ttft_seconds >= 0.6 for t in report.tries)
    # The probe retried through the 503s rather than recording a failure.
    assert sum(1 for r in endpoint.requests if r == ("POST", "/v1/chat/completions")) > 2


def test_the_loop_gives_up_after_max_tries_without_a_restore() -> None:
    with FakeEndpoint(Behaviour(boots=["cold"])) as endpoint:
        report = run_loop(endpoint, max_tries=3)
    assert report.result == "gave-up" and not report.ok
    assert endpoint.cold_starts == 3
    assert [t.boot for t in report.tries] == ["cold", "cold", "cold"]
    assert report.restored_start is None and report.restored_ttft_seconds is None


def test_snapshots_off_reports_one_plain_cold_start() -> None:
    # Even an endpoint that would restore next is cold started only once.
    with FakeEndpoint(Behaviour(boots=["cold", "restore"], boot_seconds=[61.0])) as endpoint:
        report = run_loop(endpoint, snapshots_enabled=False)
    assert report.result == "plain-cold-start" and report.ok
    assert endpoint.cold_starts == 1
    assert [(t.boot, t.boot_seconds) for t in report.tries] == [("cold", 61.0)]
    assert report.cold_start_boot_seconds == 61.0


def test_a_rejected_token_ends_the_loop_as_failed_without_more_cold_starts() -> None:
    with FakeEndpoint() as endpoint:
        report = run_loop(endpoint, credentials=Credentials(KEY, "ws-wrong"))
    assert report.result == "failed" and endpoint.cold_starts == 1
    (only,) = report.tries
    assert "rejected with 401" in only.error and KEY in only.error and "ws-wrong" not in only.error


def test_an_endpoint_that_never_boots_fails_at_the_deadline() -> None:
    with FakeEndpoint(Behaviour(boot_delay=3600)) as endpoint:
        report = run_loop(endpoint, timeout=1.5)
    assert report.result == "failed"
    assert report.tries[0].error.endswith("no token within 2s (last answer: 503)")


def test_a_failing_cold_start_is_recorded_and_ends_the_loop() -> None:
    def cannot_stop() -> None:
        raise FleetError("modal app stop failed: app not found")

    with FakeEndpoint() as endpoint:
        report = build_snapshot(
            lambda: probe_boot(endpoint.url, Credentials(KEY, SECRET), SERVED, timeout=5),
            cannot_stop,
            snapshots_enabled=True,
            max_tries=4,
        )
    assert report.result == "failed"
    assert [t.error for t in report.tries] == ["modal app stop failed: app not found"]


def test_a_health_without_boot_info_is_recorded_as_unknown() -> None:
    with FakeEndpoint(Behaviour(report_boot=False)) as endpoint:
        report = run_loop(endpoint, max_tries=2)
    assert [(t.boot, t.boot_seconds) for t in report.tries] == [("unknown", None), ("unknown", None)]
    assert report.result == "gave-up"


def test_max_tries_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        build_snapshot(lambda: pytest.fail("no probe"), lambda: None, snapshots_enabled=True, max_tries=0)


def test_a_restored_engine_that_answers_differently_fails_the_step_naming_where() -> None:
    behaviour = Behaviour(boots=["cold", "restore"], boot_seconds=[95.5, 4.2])
    # The greedy answers each boot gives, as token ids: the restore differs at the third token.
    answers = iter([{"capital": (504, 3575, 282, 2)}, {"capital": (504, 3575, 999, 2)}])
    with FakeEndpoint(behaviour) as endpoint:
        report = build_snapshot(
            lambda: probe_boot(endpoint.url, Credentials(KEY, SECRET), SERVED, timeout=10.0),
            endpoint.cold_start,
            snapshots_enabled=True,
            answers=lambda: next(answers),
        )
    assert report.result == "restored" and report.answers_match is False and not report.ok
    assert report.answers_detail == (
        "try 2 (restore) answered 'capital' differently from try 1 (cold): first difference at token 3"
    )


def test_boots_that_answer_the_same_tokens_pass_and_say_how_many_were_compared() -> None:
    behaviour = Behaviour(boots=["cold", "restore"], boot_seconds=[95.5, 4.2])
    with FakeEndpoint(behaviour) as endpoint:
        report = build_snapshot(
            lambda: probe_boot(endpoint.url, Credentials(KEY, SECRET), SERVED, timeout=10.0),
            endpoint.cold_start,
            snapshots_enabled=True,
            answers=lambda: {"capital": (504, 3575, 282), "sum": (12, 13)},
        )
    assert report.ok and report.answers_match is True
    assert report.answers_detail == "2 boots answered the same 5 greedy tokens (2 prompts)"
    # Without golden answers nothing is compared, and the written part keeps its earlier shape.
    with FakeEndpoint(Behaviour(boots=["cold"], boot_seconds=[60.0])) as endpoint:
        plain = run_loop(endpoint, snapshots_enabled=False)
    assert plain.answers_match is None
