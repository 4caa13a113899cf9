"""The post-deploy client's budget: enough redirect hops for a cold boot, one deadline for all of them."""

from __future__ import annotations

import time

import httpx2
import pytest

from modelfleet.postdeploy.waiting import (
    MIN_REDIRECTS,
    MODAL_REQUEST_LIMIT_SECONDS,
    Deadline,
    WaitExpired,
    deadline_client,
    max_redirects_for,
)


def test_the_hops_cover_the_whole_wait_at_one_303_per_request_limit() -> None:
    # An hour: 24 request limits -> 24 hops + 1 spare. The 70B model's 1800 + 120 s needs 14, below the floor.
    assert max_redirects_for(3600) == 25
    assert max_redirects_for(1920) == MIN_REDIRECTS
    assert max_redirects_for(MODAL_REQUEST_LIMIT_SECONDS) == MIN_REDIRECTS
    assert max_redirects_for(100, request_limit=2) == 51


def test_each_hop_gets_only_what_is_left_of_the_deadline() -> None:
    deadline = Deadline(30.0, started=time.monotonic() - 25.0)
    timeout = deadline.timeout()
    assert timeout.read is not None and 0 < timeout.read <= 5.0
    assert timeout.connect is not None and timeout.connect <= 5.0
    assert Deadline(600.0).timeout().connect == 10.0


def test_a_spent_deadline_stops_the_next_hop_before_it_is_sent() -> None:
    spent = Deadline(1.0, started=time.monotonic() - 2.0)
    assert spent.expired and spent.remaining == 0.0
    with deadline_client(spent) as client, pytest.raises(WaitExpired, match="no answer within 1s"):
        client.get("http://127.0.0.1:9/health")  # never connected: the hook refuses first
    assert issubclass(WaitExpired, httpx2.TimeoutException)
