"""The fleet view against the real local fleet: vLLM's own counters and histograms, read over its socket.

N requests through the edge must show up as exactly their ``usage`` in the token counters
and as N more observations in the TTFT histogram; a killed engine's series must be gone
once its time-to-live has passed.
"""

from __future__ import annotations

import json
import os
import signal
import time

import openai
import pytest
from tests.e2e.local_fleet import DEMO, LocalFleet
from tests.support.waiting import wait_until

from modelfleet.observe.exposition import FleetCollector, ReplicaStore, fleet_registry, prometheus_text
from modelfleet.observe.local_source import scrape_local
from modelfleet.targets.local.processes import is_alive
from modelfleet.targets.local.runs import RunBook

pytestmark = pytest.mark.e2e
REQUESTS = 4


def _top(fleet: LocalFleet) -> dict[str, object]:
    done = fleet.fleet("top", "--format", "json", "--interval", "0.5")
    assert done.returncode == 0, done.stderr
    (row,) = [m for m in json.loads(done.stdout)["models"] if m["model"] == DEMO]
    return dict(row)


def test_token_counters_and_ttft_count_match_the_answers(running_fleet: LocalFleet) -> None:
    key, secret = running_fleet.create_token("e2e-observe")
    client = openai.OpenAI(
        base_url=f"{running_fleet.url}/v1",
        api_key="unused",
        default_headers={"Modal-Key": key, "Modal-Secret": secret},
        max_retries=0,
    )
    before = _top(running_fleet)
    prompt_tokens = completion_tokens = 0
    for i in range(REQUESTS):
        answer = client.chat.completions.create(
            model=DEMO, messages=[{"role": "user", "content": f"Count to {i + 3}."}], max_tokens=8 + i
        )
        assert answer.usage is not None
        prompt_tokens += answer.usage.prompt_tokens
        completion_tokens += answer.usage.completion_tokens
    after = _top(running_fleet)
    assert after["replicas_running"] == 1 and after["replicas_starting"] == 0
    assert float(str(after["tokens_in"])) - float(str(before["tokens_in"])) == prompt_tokens
    assert float(str(after["tokens_out"])) - float(str(before["tokens_out"])) == completion_tokens
    assert float(str(after["requests_done"])) - float(str(before["requests_done"])) == REQUESTS
    assert after["ttft_p50"] is not None and after["dollars_per_hour"] is not None


def test_a_killed_engine_leaves_no_series_after_its_ttl(running_fleet: LocalFleet) -> None:
    ttl = 3.0
    book = RunBook(running_fleet.state_dir)
    collector = FleetCollector(lambda: scrape_local(book), "local", "test", {}, {}, ReplicaStore(ttl=ttl))
    registry = fleet_registry(collector)
    run = book.read(DEMO)
    assert run is not None
    replica = f'replica="local-{run.engine_pid}"'
    assert replica in prometheus_text(registry)
    os.kill(run.engine_pid, signal.SIGKILL)
    assert wait_until(lambda: not is_alive(run.engine_pid), 30)
    killed_at = time.time()
    # Within the TTL the last good scrape still stands (a missed scrape is not a dead replica) ...
    assert replica in prometheus_text(registry) or time.time() - killed_at > ttl
    # ... and once it has passed, the series are gone whatever the supervisor is doing meanwhile.
    assert wait_until(lambda: time.time() - killed_at > ttl, ttl + 5)
    assert replica not in prometheus_text(registry)
