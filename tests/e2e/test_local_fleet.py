"""The local target end to end: the demo fleet brought up for real, asked through its edge.

One fleet per test session (vLLM takes about a minute to start on two cores); the
tests run in file order and the last ones stop it.
"""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import openai
import pytest
from tests.e2e.local_fleet import DEMO, LocalFleet, local_fleet

from modelfleet.targets.local.processes import is_alive

pytestmark = pytest.mark.e2e
__all__ = ["local_fleet"]


def _client(fleet: LocalFleet, key: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{fleet.url}/v1",
        api_key="unused",
        default_headers={"Modal-Key": key, "Modal-Secret": secret},
        max_retries=0,
    )


def _run_record(fleet: LocalFleet) -> dict[str, object]:
    return dict(json.loads((fleet.state_dir / "runs" / f"{DEMO}.json").read_text()))


def test_the_demo_model_answers_through_the_authenticated_edge(local_fleet: LocalFleet) -> None:
    key, secret = local_fleet.create_token("e2e-chat")
    reply = _client(local_fleet, key, secret).chat.completions.create(
        model=DEMO,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        temperature=0,
        max_tokens=20,
    )
    assert "Paris" in (reply.choices[0].message.content or "")


def test_streaming_arrives_in_several_chunks(local_fleet: LocalFleet) -> None:
    key, secret = local_fleet.create_token("e2e-stream")
    stream = _client(local_fleet, key, secret).chat.completions.create(
        model=DEMO,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        temperature=0,
        max_tokens=20,
        stream=True,
    )
    pieces = [e.choices[0].delta.content for e in stream if e.choices and e.choices[0].delta.content]
    assert len(pieces) > 3
    assert "Paris" in "".join(pieces)


def test_no_token_or_a_wrong_token_gets_401(local_fleet: LocalFleet) -> None:
    key, secret = local_fleet.create_token("e2e-auth")
    body = {"model": DEMO, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    url = f"{local_fleet.url}/v1/chat/completions"
    assert httpx.post(url, json=body, timeout=30).status_code == 401
    assert (
        httpx.post(url, json=body, headers={"Modal-Key": key, "Modal-Secret": "ws-wrong"}, timeout=30).status_code
        == 401
    )
    assert (
        httpx.post(url, json=body, headers={"Authorization": f"Bearer {key}.{secret}"}, timeout=60).status_code == 200
    )
    with pytest.raises(openai.AuthenticationError):
        _client(local_fleet, "wk-nobody", "ws-nothing").models.list()


def test_status_shows_the_running_model(local_fleet: LocalFleet) -> None:
    done = local_fleet.fleet("status")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if DEMO in line)
    assert local_fleet.url in row and "ready" in row and "healthy" in row and "GiB" in row


def test_a_second_up_changes_nothing(local_fleet: LocalFleet) -> None:
    before = _run_record(local_fleet)
    done = local_fleet.fleet("up", DEMO)
    assert done.returncode == 0, done.stderr
    assert "unchanged" in done.stdout
    after = _run_record(local_fleet)
    assert (after["supervisor_pid"], after["engine_pid"]) == (before["supervisor_pid"], before["engine_pid"])


def test_a_crashed_engine_is_restarted_and_the_edge_answers_503_meanwhile(local_fleet: LocalFleet) -> None:
    record = _run_record(local_fleet)
    os.kill(int(str(record["engine_pid"])), signal.SIGKILL)
    saw_503 = False
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        health = httpx.get(f"{local_fleet.url}/health", timeout=10)
        saw_503 = saw_503 or health.status_code == 503
        current = _run_record(local_fleet)
        if current["restarts"] == 1 and current["state"] == "ready" and health.status_code == 200:
            break
        time.sleep(1)
    else:
        pytest.fail(f"engine not restarted: {_run_record(local_fleet)}")
    assert saw_503
    assert current["engine_pid"] != record["engine_pid"]
    assert health.json()["restarts"] == 1
    status = local_fleet.fleet("status").stdout
    assert "ready" in next(line for line in status.splitlines() if DEMO in line)


def test_down_leaves_no_process_and_no_run_state(local_fleet: LocalFleet) -> None:
    record = _run_record(local_fleet)
    done = local_fleet.fleet("down", DEMO)
    assert done.returncode == 0, done.stderr
    for pid in (int(str(record["supervisor_pid"])), int(str(record["engine_pid"]))):
        assert not is_alive(pid), f"process {pid} survived fleet down"
    assert not (local_fleet.state_dir / "runs" / f"{DEMO}.json").exists()
    status = local_fleet.fleet("status").stdout
    assert "stopped" in next(line for line in status.splitlines() if DEMO in line)
