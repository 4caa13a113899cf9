"""The post-deploy client's budget: enough redirect hops for a cold boot, one deadline for all of them."""

from __future__ import annotations

import time

import httpx2
import pytest

from modelfleet.postdeploy.waiting import (
    MODAL_REQUEST_LIMIT_SECONDS,
    Deadline,
    WaitExpired,
    deadline_client,
    max_redirects_for,
)


def test_the_hops_cover_the_whole_wait_at_one_303_per_request_limit() -> None:
    # The 70B model: startup_timeout 1800 + 120 s margin = 12.8 request limits -> 13 hops + 1 spare.
    assert max_redirects_for(1920) == 14
    assert max_redirects_for(MODAL_REQUEST_LIMIT_SECONDS) == 2
    assert max_redirects_for(5) == 2
    assert max_redirects_for(10, request_limit=2) == 6


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
