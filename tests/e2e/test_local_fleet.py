"""The local target end to end: the demo fleet brought up for real, asked through its edge.

One fleet per test session (vLLM takes about a minute to start on two cores). Each test
asks for it running (``running_fleet``), so none depends on the ones before it: a test
that stops it is followed by a fresh start, and the crash test counts restarts from
where it found them.
"""

from __future__ import annotations

import json
import os
import signal

import httpx
import openai
import pytest
from tests.e2e.local_fleet import DEMO, LocalFleet
from tests.support.waiting import wait_until

from modelfleet.targets.local.processes import is_alive

pytestmark = pytest.mark.e2e


def _client(fleet: LocalFleet, key: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{fleet.url}/v1",
        api_key="unused",
        default_headers={"Modal-Key": key, "Modal-Secret": secret},
        max_retries=0,
    )


def _run_record(fleet: LocalFleet) -> dict[str, object]:
    return dict(json.loads((fleet.state_dir / "runs" / f"{DEMO}.json").read_text()))


def test_the_demo_model_answers_through_the_authenticated_edge(running_fleet: LocalFleet) -> None:
    key, secret = running_fleet.create_token("e2e-chat")
    reply = _client(running_fleet, key, secret).chat.completions.create(
        model=DEMO,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        temperature=0,
        max_tokens=20,
    )
    assert "Paris" in (reply.choices[0].message.content or "")


def test_streaming_arrives_in_several_chunks(running_fleet: LocalFleet) -> None:
    key, secret = running_fleet.create_token("e2e-stream")
    stream = _client(running_fleet, key, secret).chat.completions.create(
        model=DEMO,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        temperature=0,
        max_tokens=20,
        stream=True,
    )
    pieces = [e.choices[0].delta.content for e in stream if e.choices and e.choices[0].delta.content]
    assert len(pieces) > 3
    assert "Paris" in "".join(pieces)


def test_no_token_or_a_wrong_token_gets_401(running_fleet: LocalFleet) -> None:
    key, secret = running_fleet.create_token("e2e-auth")
    body = {"model": DEMO, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    url = f"{running_fleet.url}/v1/chat/completions"
    assert httpx.post(url, json=body, timeout=30).status_code == 401
    assert (
        httpx.post(url, json=body, headers={"Modal-Key": key, "Modal-Secret": "ws-wrong"}, timeout=30).status_code
        == 401
    )
    assert (
        httpx.post(url, json=body, headers={"Authorization": f"Bearer {key}.{secret}"}, timeout=60).status_code == 200
    )
    with pytest.raises(openai.AuthenticationError):
        _client(running_fleet, "wk-nobody", "ws-nothing").models.list()


def test_status_shows_the_running_model(running_fleet: LocalFleet) -> None:
    done = running_fleet.fleet("status")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if DEMO in line)
    assert running_fleet.url in row and "ready" in row and "healthy" in row and "GiB" in row


def test_a_second_up_changes_nothing(running_fleet: LocalFleet) -> None:
    before = _run_record(running_fleet)
    done = running_fleet.fleet("up", DEMO)
    assert done.returncode == 0, done.stderr
    assert "unchanged" in done.stdout
    after = _run_record(running_fleet)
    assert (after["supervisor_pid"], after["engine_pid"]) == (before["supervisor_pid"], before["engine_pid"])


def test_a_crashed_engine_is_restarted_and_the_edge_answers_503_meanwhile(running_fleet: LocalFleet) -> None:
    record = _run_record(running_fleet)
    restarts = int(str(record["restarts"])) + 1  # counted from here: another test may have crashed it before
    os.kill(int(str(record["engine_pid"])), signal.SIGKILL)
    seen: list[int] = []

    def restarted() -> bool:
        health = httpx.get(f"{running_fleet.url}/health", timeout=10)
        seen.append(health.status_code)
        current = _run_record(running_fleet)
        return current["restarts"] == restarts and current["state"] == "ready" and health.status_code == 200

    assert wait_until(restarted, 300, interval=1.0), f"engine not restarted: {_run_record(running_fleet)}"
    assert 503 in seen
    assert _run_record(running_fleet)["engine_pid"] != record["engine_pid"]
    assert httpx.get(f"{running_fleet.url}/health", timeout=10).json()["restarts"] == restarts
    status = running_fleet.fleet("status").stdout
    assert "ready" in next(line for line in status.splitlines() if DEMO in line)


def test_down_leaves_no_process_and_no_run_state(running_fleet: LocalFleet) -> None:
    record = _run_record(running_fleet)
    done = running_fleet.fleet("down", DEMO)
    assert done.returncode == 0, done.stderr
    for pid in (int(str(record["supervisor_pid"])), int(str(record["engine_pid"]))):
        assert not is_alive(pid), f"process {pid} survived fleet down"
    assert not (running_fleet.state_dir / "runs" / f"{DEMO}.json").exists()
    status = running_fleet.fleet("status").stdout
    assert "stopped" in next(line for line in status.splitlines() if DEMO in line)
