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
from typing import Any

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


def _status_json(fleet: LocalFleet) -> dict[str, Any]:
    done = fleet.fleet("status", "--format", "json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _client_key(fleet: LocalFleet, name: str) -> str:
    done = fleet.fleet("keys", "create", name, "--format", "json")
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["key"])


def test_fleet_up_starts_the_gateway_and_status_json_gives_its_url(running_fleet: LocalFleet) -> None:
    gateway = _status_json(running_fleet)["gateway"]
    assert gateway["url"] == f"http://127.0.0.1:{running_fleet.env['FLEET_GATEWAY__PORT']}"
    assert gateway["health"] == "healthy" and gateway["models"] == [DEMO]
    assert is_alive(int(gateway["pid"]))
    assert httpx.get(f"{gateway['url']}/health", timeout=10).json()["models"] == [DEMO]
    assert "gateway: " + gateway["openai_base_url"] in running_fleet.fleet("status").stdout


def test_the_gateway_answers_the_stock_openai_sdk_with_a_client_key(running_fleet: LocalFleet) -> None:
    base_url = _status_json(running_fleet)["gateway"]["openai_base_url"]
    client = openai.OpenAI(base_url=base_url, api_key=_client_key(running_fleet, "e2e-gateway"), max_retries=0)
    assert [m.id for m in client.models.list()] == [DEMO]
    reply = client.chat.completions.create(
        model=DEMO,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        temperature=0,
        max_tokens=20,
    )
    assert "Paris" in (reply.choices[0].message.content or "")
    # A client key is the gateway's, not the edge's: the edge itself refuses it.
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{running_fleet.url}/v1", api_key=client.api_key, max_retries=0).models.list()
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base_url, api_key="fk-nobody", max_retries=0).models.list()
    usage = running_fleet.fleet("usage", "--key", "e2e-gateway", "--format", "json")
    assert usage.returncode == 0, usage.stderr
    assert "e2e-gateway" in usage.stdout


def test_demo_asks_through_the_gateway_with_a_fresh_client_key(running_fleet: LocalFleet) -> None:
    done = running_fleet.fleet("demo", DEMO)
    assert done.returncode == 0, done.stderr
    base_url = _status_json(running_fleet)["gateway"]["openai_base_url"]
    assert "Paris" in done.stdout
    assert f"OpenAI(base_url={base_url!r}, api_key=" in done.stdout
    assert "fleet keys revoke demo-" in done.stdout


def test_down_leaves_no_process_and_no_run_state(running_fleet: LocalFleet) -> None:
    record = _run_record(running_fleet)
    gateway_pid = int(_status_json(running_fleet)["gateway"]["pid"])
    done = running_fleet.fleet("down", DEMO)
    assert done.returncode == 0, done.stderr
    for pid in (int(str(record["supervisor_pid"])), int(str(record["engine_pid"])), gateway_pid):
        assert not is_alive(pid), f"process {pid} survived fleet down"
    assert not (running_fleet.state_dir / "runs" / f"{DEMO}.json").exists()
    assert not (running_fleet.state_dir / "gateway.json").exists()
    assert _status_json(running_fleet)["gateway"] is None
    # The gateway's service token went with it.
    assert "gateway-" not in running_fleet.fleet("token", "list").stdout
    status = running_fleet.fleet("status").stdout
    assert "stopped" in next(line for line in status.splitlines() if DEMO in line)
