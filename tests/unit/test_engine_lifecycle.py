"""The engine's process lifecycle and hook order, against a stand-in speaking vLLM's HTTP.

Real sleep mode needs a GPU (vLLM on CPU refuses ``--enable-sleep-mode``), so the order
of the snapshot hooks -- start, health, warm-up, sleep, then wake after restore -- is
checked here against a small server that answers vLLM's routes the way vLLM does and
records what it was asked. Real vLLM start/stop is in tests/e2e/test_engine.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelfleet.runtime.engine import Engine, EngineStartError, group_members
from modelfleet.runtime.engine_client import EngineError
from modelfleet.runtime.ports import free_port
from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]

STAND_IN = textwrap.dedent(
    """
    import json, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    port, record = int(sys.argv[1]), open(sys.argv[2], "a")
    state = {"asleep": False}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, code, body=None):
            data = json.dumps(body or {}).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            record.write(f"GET {self.path}\\n"); record.flush()
            if self.path == "/health":
                self._answer(200)
            elif self.path == "/is_sleeping":
                self._answer(200, {"is_sleeping": state["asleep"]})
            else:
                self._answer(404)

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            record.write(f"POST {self.path}\\n"); record.flush()
            if self.path == "/v1/chat/completions":
                self._answer(503 if state["asleep"] else 200, {"choices": []})
            elif self.path.startswith("/sleep?level="):
                state["asleep"] = True; self._answer(200)
            elif self.path == "/wake_up":
                state["asleep"] = False; self._answer(200)
            else:
                self._answer(404)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """
)


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    """An engine whose "vLLM" is the stand-in, started as if with sleep mode."""
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    record = tmp_path / "calls.txt"
    port = free_port()
    command = [sys.executable, str(script), str(port), str(record), "--served-model-name", "m", "--enable-sleep-mode"]
    engine = Engine(command, env={}, port=port, log_path=tmp_path / "engine.log")
    yield engine, record
    engine.stop(grace=2)


def test_snapshot_hooks_start_warm_up_and_sleep_then_wake_in_that_order(stand_in: tuple[Engine, Path]) -> None:
    engine, record = stand_in
    engine.prepare_for_snapshot(timeout=30, warm_up_requests=2, sleep_level=1)
    assert engine.client.is_sleeping()
    with pytest.raises(EngineError, match=r"^POST /v1/chat/completions to http://127\.0\.0\.1:\d+ failed: HTTP 503"):
        engine.client.warm_up(1)  # the stand-in refuses chat while asleep, as vLLM does
    engine.resume_after_restore()
    assert not engine.client.is_sleeping()
    engine.client.warm_up(1)  # answered: the wake took
    calls = [line for line in record.read_text().splitlines() if line != "GET /health"]
    assert calls == [
        "POST /v1/chat/completions",
        "POST /v1/chat/completions",
        "POST /sleep?level=1",
        "GET /is_sleeping",
        "POST /v1/chat/completions",
        "POST /wake_up",
        "GET /is_sleeping",
        "POST /v1/chat/completions",
    ]
    assert record.read_text().splitlines()[0] == "GET /health"


def test_sleep_without_sleep_mode_says_it_needs_a_gpu_before_starting_anything(tmp_path: Path) -> None:
    engine = Engine(["true"], env={}, port=free_port(), log_path=tmp_path / "log")
    calls = (
        lambda: engine.client.sleep(1),
        engine.client.wake,
        engine.client.is_sleeping,
        engine.resume_after_restore,
        lambda: engine.prepare_for_snapshot(timeout=30, warm_up_requests=1, sleep_level=1),
    )
    for call in calls:
        with pytest.raises(EngineError, match="needs a GPU"):
            call()
    assert engine.pid is None


def test_every_control_call_to_an_engine_that_is_not_there_is_an_engine_error_naming_it(tmp_path: Path) -> None:
    # Before: warm-up and is_sleeping let httpx.ConnectError out, so a hook failed with a bare traceback.
    port = free_port()
    engine = Engine(["vllm", "--enable-sleep-mode"], env={}, port=port, log_path=tmp_path / "log")
    calls = {
        "POST /v1/chat/completions": lambda: engine.client.warm_up(1),
        "POST /sleep?level=1": lambda: engine.client.sleep(1),
        "POST /wake_up": engine.client.wake,
        "GET /is_sleeping": engine.client.is_sleeping,
    }
    for route, call in calls.items():
        with pytest.raises(EngineError) as caught:
            call()
        assert str(caught.value) == f"{route} to http://127.0.0.1:{port} failed: ConnectError; is vLLM running?"
    assert not engine.client.healthy()


def test_a_process_exiting_before_healthy_fails_fast_with_its_log_tail(tmp_path: Path) -> None:
    program = (
        "import sys; [print(f'noise {i}') for i in range(100)]; print('ValueError: no weights at /vol'); sys.exit(3)"
    )
    engine = Engine([sys.executable, "-c", program], env={}, port=free_port(), log_path=tmp_path / "log")
    engine.start()
    started = time.monotonic()
    with pytest.raises(EngineStartError) as caught:
        engine.wait_healthy(timeout=60)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert "exited with code 3" in message and "ValueError: no weights at /vol" in message
    assert "noise 50" not in message  # only the tail
    assert engine.returncode == 3


def test_not_healthy_by_the_deadline_is_an_error_and_stop_cleans_up(tmp_path: Path) -> None:
    engine = Engine(
        [sys.executable, "-c", "import time; time.sleep(600)"], env={}, port=free_port(), log_path=tmp_path / "log"
    )
    engine.start()
    with pytest.raises(EngineStartError, match="not healthy after 1s"):
        engine.wait_healthy(timeout=1)
    engine.stop(grace=2)
    assert engine.pid is not None and not pid_alive(engine.pid)


# Like vLLM: a server that forks a helper (vLLM's engine core) into its process group.
FORKING_SERVER = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    if "--ignore-sigterm" in sys.argv:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("helper-pid", helper.pid, flush=True)
    time.sleep(600)
    """
)


def helper_pid(log: Path) -> int:
    """The forked helper's pid, once the server has printed it."""
    assert wait_until(lambda: "\nhelper-pid " in log.read_text(), 10), log.read_text()
    return int(log.read_text().split("\nhelper-pid ")[1].split()[0])


def test_stop_kills_the_whole_group_even_when_sigterm_is_ignored(tmp_path: Path) -> None:
    log = tmp_path / "log"
    command = [sys.executable, "-c", FORKING_SERVER, "--ignore-sigterm"]
    engine = Engine(command, env={}, port=free_port(), log_path=log)
    engine.start()
    helper = helper_pid(log)
    assert engine.pid is not None and helper in group_members(engine.pid)
    started = time.monotonic()
    engine.stop(grace=1)
    assert time.monotonic() - started < 10
    assert group_members(engine.pid) == []
    assert not pid_alive(helper)


def test_engine_and_everything_it_forked_die_when_its_owner_is_killed(tmp_path: Path) -> None:
    log = tmp_path / "log"
    owner_program = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from modelfleet.runtime.engine import Engine
        engine = Engine([sys.executable, "-c", {FORKING_SERVER!r}], env={{}}, port=1, log_path=Path({str(log)!r}))
        engine.start()
        print(engine.pid, flush=True)
        time.sleep(600)
        """
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", owner_program],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "platform")},
    )
    assert owner.stdout is not None
    group = int(owner.stdout.readline())
    helper = helper_pid(log)
    assert pid_alive(helper)
    owner.kill()  # no cleanup code of the owner runs: only the kernel and the guardian can help
    owner.wait()
    # The parent-death signal reaches only the direct child; the forked helper must go too.
    assert wait_until(lambda: group_members(group) == [], 10), "an orphan outlived the engine's owner"
    assert not pid_alive(helper)


def test_engine_started_from_a_short_lived_thread_outlives_that_thread(tmp_path: Path) -> None:
    # The parent-death signal fires when the forking *thread* ends; hooks often run on such threads.
    engine = Engine(
        [sys.executable, "-c", "import time; time.sleep(600)"], env={}, port=free_port(), log_path=tmp_path / "log"
    )
    hook = threading.Thread(target=engine.start)
    hook.start()
    hook.join()
    try:
        assert engine.pid is not None
        assert not wait_until(lambda: not pid_alive(engine.pid or 0), 1.5), "engine died with the hook's thread"
    finally:
        engine.stop(grace=2)
