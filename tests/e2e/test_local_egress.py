"""Privacy on the local target, end to end: the session's demo fleet (``local_fleet``), nothing started anew.

The demo model declares no ``[privacy]``, so it gets the default, ``egress = "blocked"``: its
vLLM serves from a network namespace with loopback only, on a Unix socket the edge relays
to. These tests read what the fleet claims (``fleet status``, the run record) and check it
against the kernel's view (/proc, psutil), then send a canary through every path a prompt
takes and look for it in every file the fleet wrote and every line it logged.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
from pathlib import Path

import httpx
import openai
import psutil
import pytest
from tests.e2e.local_fleet import DEMO, LocalFleet

from modelfleet.runtime.engine import group_members
from modelfleet.runtime.netns import namespace_id

pytestmark = pytest.mark.e2e


def _run_record(fleet: LocalFleet) -> dict[str, object]:
    return dict(json.loads((fleet.state_dir / "runs" / f"{DEMO}.json").read_text()))


def _headers(fleet: LocalFleet, name: str) -> dict[str, str]:
    key, secret = fleet.create_token(name)
    return {"Modal-Key": key, "Modal-Secret": secret}


def test_status_shows_egress_blocked_and_verified_by_a_probe_from_inside(running_fleet: LocalFleet) -> None:
    done = running_fleet.fleet("status")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if DEMO in line)
    assert "blocked (verified)" in row
    probe = str(_run_record(running_fleet)["egress_probe"])
    outcomes = dict(re.findall(r"(\d+\.\d+\.\d+\.\d+):\d+: (\w+)", probe))
    # Loopback inside is the namespace's own (refused); this machine's interface addresses have no route.
    assert outcomes.pop("127.0.0.1") == "ECONNREFUSED", probe
    assert set(outcomes.values()) <= {"ENETUNREACH"}, probe
    assert "reached" not in probe


def test_every_engine_process_is_in_a_network_of_its_own_with_no_inet_listener(running_fleet: LocalFleet) -> None:
    engine_pid = int(str(_run_record(running_fleet)["engine_pid"]))
    members = group_members(engine_pid)
    assert len(members) >= 2  # the guardian and vLLM's API server at least
    spaces = {namespace_id(pid) for pid in members}
    assert len(spaces) == 1 and namespace_id(os.getpid()) not in spaces
    for pid in members:
        inet = [c for c in psutil.Process(pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert inet == [], f"process {pid} listens on {inet}"
    sockets = list((running_fleet.state_dir / "sockets").glob("*.sock"))
    assert [p.name for p in sockets] == [f"{DEMO}.sock"] and stat.S_ISSOCK(sockets[0].stat().st_mode)


def test_the_engine_answers_through_the_edge_over_its_socket(running_fleet: LocalFleet) -> None:
    reply = httpx.post(
        f"{running_fleet.url}/v1/completions",
        json={"model": DEMO, "prompt": "The capital of France is", "max_tokens": 5, "temperature": 0},
        headers=_headers(running_fleet, "e2e-socket"),
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["text"]


def _files_written(state_dir: Path) -> list[Path]:
    """Every regular file under the fleet's state folder, the weights volume aside (it holds no request)."""
    files = []
    for path in state_dir.rglob("*"):
        if "volumes" in path.relative_to(state_dir).parts[:1]:
            continue
        if path.is_file() and not path.is_symlink():
            files.append(path)
    return files


def test_a_canary_sent_through_every_path_is_in_no_file_and_no_log_line(running_fleet: LocalFleet) -> None:
    canary = f"canary-{secrets.token_hex(8)}"
    headers = _headers(running_fleet, f"e2e-canary-{secrets.token_hex(4)}")
    client = openai.OpenAI(base_url=f"{running_fleet.url}/v1", api_key="unused", default_headers=headers, max_retries=0)
    message = f"Repeat this word: {canary}"
    chat = client.chat.completions.create(
        model=DEMO, messages=[{"role": "user", "content": message}], max_tokens=24, temperature=0
    )
    completion = client.completions.create(model=DEMO, prompt=message, max_tokens=24, temperature=0)
    stream = client.chat.completions.create(
        model=DEMO, messages=[{"role": "user", "content": message}], max_tokens=24, temperature=0, stream=True
    )
    streamed = "".join(e.choices[0].delta.content or "" for e in stream if e.choices)
    assert chat.choices[0].message.content and completion.choices[0].text and streamed
    # vLLM answers a bad value by echoing it back: the canary is in the error, so it went everywhere an error goes.
    echoed = [
        httpx.post(
            f"{running_fleet.url}/v1/chat/completions",
            json={"model": DEMO, "messages": [{"role": "user", "content": "hi"}], "temperature": canary},
            headers=headers,
            timeout=60,
        ),
        httpx.post(
            f"{running_fleet.url}/v1/completions",
            json={"model": canary, "prompt": message, "max_tokens": 4},
            headers=headers,
            timeout=60,
        ),
    ]
    # A query string reaches vLLM as the client wrote it (the edge forwards it untouched).
    queried = httpx.post(
        f"{running_fleet.url}/v1/completions?user={canary}",
        json={"model": DEMO, "prompt": message, "max_tokens": 4},
        headers=headers,
        timeout=60,
    )
    assert queried.status_code == 200, queried.text
    assert [r.status_code for r in echoed] == [400, 404]
    assert all(canary in r.text for r in echoed), [r.text for r in echoed]
    # The CLI's own output, as an operator would read it after the requests.
    logs = running_fleet.fleet("logs", DEMO, "--lines", "100000")
    status = running_fleet.fleet("status")
    assert logs.returncode == 0 and status.returncode == 0

    written = _files_written(running_fleet.state_dir)
    assert any(p.parent.name == "logs" for p in written) and any(p.parent.name == "runs" for p in written)
    holding = [str(p) for p in written if canary.encode() in p.read_bytes()]
    assert holding == [], f"the canary was written to {holding}"
    for output in (logs.stdout, logs.stderr, status.stdout, status.stderr):
        assert canary not in output
