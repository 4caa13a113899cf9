"""Quotas are enforced before a request reaches a model; each refusal is a 429 naming its limit, with Retry-After."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from tests.support.gateway_fixtures import CHAT, Fleet, bearer, error_of
from tests.support.waiting import wait_until


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with ExitStack() as stack:
        yield Fleet(tmp_path, stack)


def chat(url: str, key: str, **body: object) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json={**CHAT, **body}, headers=bearer(key), timeout=30)


def statuses_until_refused(url: str, key: str, most: int, **body: object) -> tuple[list[int], httpx.Response]:
    """Send sequentially until a 429 (or ``most`` requests); the statuses before it and the last response."""
    seen: list[int] = []
    for _ in range(most):
        response = chat(url, key, **body)
        if response.status_code == 429:
            return seen, response
        seen.append(response.status_code)
    raise AssertionError(f"no 429 after {most} requests: {seen}")


def test_requests_per_minute_refuses_the_request_over_the_limit(fleet: Fleet) -> None:
    url = fleet.gateway()
    passed, refused = statuses_until_refused(url, fleet.key("alice", rpm=3), 10)
    assert passed == [200, 200, 200]
    assert error_of(refused)["type"] == "requests_per_minute"
    assert "requests per minute" in str(error_of(refused)["message"])
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(fleet.upstream.received) == 3


def test_tokens_per_minute_charges_prompt_estimate_plus_max_tokens_up_front(fleet: Fleet) -> None:
    url = fleet.gateway()
    key = fleet.key("alice", tpm=200)
    # The body is ~110 bytes (~27 tokens estimated) + max_tokens 60: two fit in 200, the third does not.
    passed, refused = statuses_until_refused(url, key, 10, max_tokens=60)
    assert passed == [200, 200]
    assert error_of(refused)["type"] == "tokens_per_minute" and int(refused.headers["Retry-After"]) >= 1
    too_big = chat(url, key, max_tokens=500)
    assert too_big.status_code == 429 and "lower max_tokens" in str(error_of(too_big)["message"])
    # n choices each up to max_tokens: 4 x 60 alone is over 200.
    four_choices = chat(url, key, max_tokens=60, n=4)
    assert four_choices.status_code == 429 and "lower max_tokens" in str(error_of(four_choices)["message"])
    assert len(fleet.upstream.received) == 2


def test_daily_tokens_are_counted_from_the_models_usage(fleet: Fleet) -> None:
    url = fleet.gateway()
    key = fleet.key("alice", daily_tokens=120)
    passed, refused = statuses_until_refused(url, key, 20)
    assert error_of(refused)["type"] == "daily_tokens"
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp() + 86400
    assert abs(int(refused.headers["Retry-After"]) - (midnight - datetime.now(UTC).timestamp())) < 60
    # The upstream reports 7 prompt + 3 completion tokens per request: never more than the day's 120.
    assert 1 <= len(passed) == len(fleet.upstream.received) and 10 * len(passed) <= 120


def test_monthly_budget_refuses_once_the_priced_gpu_time_reaches_it(fleet: Fleet) -> None:
    url = fleet.gateway()
    key = fleet.key("alice", monthly_usd=1e-9)
    assert chat(url, key).status_code == 200
    # The first request's GPU time (priced at $3.6/h on its H100) is counted when its answer ends.
    assert wait_until(lambda: chat(url, key).status_code == 429, 10)
    refused = chat(url, key)
    assert error_of(refused)["type"] == "monthly_usd" and int(refused.headers["Retry-After"]) >= 1


def test_two_gateways_with_their_own_rate_windows_admit_at_most_twice_the_rpm(fleet: Fleet) -> None:
    """The documented overshoot: with async+memory:// each process counts alone, so N processes admit N x rpm."""
    first, second = fleet.gateway(), fleet.gateway()
    key = fleet.key("alice", rpm=2)
    statuses = [chat(url, key).status_code for url in (first, second) * 4]
    assert sorted(statuses) == [200] * 4 + [429] * 4
    assert len(fleet.upstream.received) == 4


def both_ledgers_show(fleet: Fleet, today: date, tokens: int) -> bool:
    return all(ledger.tokens_on(today, "alice") == tokens for ledger in fleet.ledgers)


def test_two_gateways_share_daily_tokens_through_the_ledger(fleet: Fleet) -> None:
    """Sequential use of two gateways never passes the daily quota once each has flushed the other's usage."""
    first, second = fleet.gateway(), fleet.gateway()
    key = fleet.key("alice", daily_tokens=100)
    today = datetime.now(UTC).date()
    sent = 0
    for index in range(30):
        response = chat((first, second)[index % 2], key)
        if response.status_code == 429:
            break
        sent += 1
        # Each gateway reads the shared file at its next flush (0.2 s here): wait until both have.
        assert wait_until(functools.partial(both_ledgers_show, fleet, today, 10 * sent), 5)
    assert error_of(response)["type"] == "daily_tokens"
    assert sent >= 1 and 10 * sent <= 100 and len(fleet.upstream.received) == sent
