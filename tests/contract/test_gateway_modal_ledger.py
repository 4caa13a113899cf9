"""The gateway's Modal usage ledger: the real modal client against the loopback API's Dicts.

Two processes stand in for two gateway containers (each its own MODAL_TASK_ID): each
counts, flushes to the shared modal.Dict, and sees the other's usage in its quota totals;
`fleet usage --format json` on the Modal target sums both. The Dict holds counts only.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelfleet.gateway.ledger import COLUMNS
from tests.support.modal_api import ModalApiRecorder

REPO_ROOT = Path(__file__).resolve().parents[2]
DICT = "modelfleet-gateway-usage"
# A gateway container: its daily quota asks first (as ``Quotas.admit`` does before each request,
# which makes the flushes read the others' totals), count what argv says for key "alice" on
# 2026-12-02, flush, flush again (the second flush reads what the other container wrote), print
# the quota totals it sees.
CONTAINER = """
import json, sys
from datetime import date
from modelfleet.gateway.ledger import Counts
from modelfleet.gateway.modal_ledger import ModalLedger

requests, prompt, completion, cost = (float(v) for v in sys.argv[1:5])
ledger = ModalLedger("modelfleet-gateway-usage", "main")
day = date(2026, 12, 2)
ledger.tokens_on(day, "alice")
for _ in range(int(requests)):
    ledger.count(day, "alice", "tiny-chat", Counts(requests=1, prompt_tokens=int(prompt), completion_tokens=int(completion), cost_usd=cost))
ledger.count(day, "bob", "tiny-chat", Counts(rejected=1))
ledger.flush(day)
ledger.flush(day)
print(json.dumps({"tokens": ledger.tokens_on(day, "alice"), "cost": ledger.cost_in_month(date(2026, 12, 31), "alice"),
                  "other_day": ledger.tokens_on(date(2026, 12, 3), "alice"), "container": ledger.container}))
"""


@pytest.fixture
def api() -> Iterator[ModalApiRecorder]:
    with ModalApiRecorder() as recorder:
        yield recorder


@pytest.fixture
def modal_fleet(tmp_path: Path, api: ModalApiRecorder) -> dict[str, str]:
    """Environment of a fleet on the Modal target, pointed at the recorder."""
    shutil.copy(REPO_ROOT / "fleet.toml", tmp_path / "fleet.toml")
    (tmp_path / "models").mkdir()
    env = api.subprocess_env()
    env.update(
        FLEET_ROOT=str(tmp_path),
        FLEET_TARGET="modal",
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "platform"), str(REPO_ROOT)]),
    )
    return env


def run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def container(env: dict[str, str], task_id: str, *counts: str) -> dict[str, object]:
    out = run({**env, "MODAL_TASK_ID": task_id}, sys.executable, "-c", textwrap.dedent(CONTAINER), *counts)
    seen: dict[str, object] = json.loads(out)
    return seen


def test_two_containers_write_one_ledger_that_quotas_and_fleet_usage_sum(
    api: ModalApiRecorder, modal_fleet: dict[str, str], tmp_path: Path
) -> None:
    first = container(modal_fleet, "ta-first", "3", "10", "5", "0.25")  # 3 requests, 45 tokens, $0.75
    second = container(modal_fleet, "ta-second", "2", "7", "1", "0.5")  # 2 requests, 16 tokens, $1.00
    # The first saw only its own rows (it ran alone); the second sees both containers'.
    assert first["tokens"] == 45 and first["cost"] == pytest.approx(0.75)
    assert second["tokens"] == 61 and second["cost"] == pytest.approx(1.75)
    assert second["other_day"] == 0
    assert str(first["container"]).startswith("ta-first-") and str(second["container"]).startswith("ta-second-")

    usage = json.loads(run(modal_fleet, sys.executable, "-m", "modelfleet", "usage", "--format", "json"))
    assert [(row["key"], row["model"], row["day"]) for row in usage] == [
        ("alice", "tiny-chat", "2026-12-02"),
        ("bob", "tiny-chat", "2026-12-02"),
    ]
    alice, bob = usage
    assert (alice["requests"], alice["prompt_tokens"], alice["completion_tokens"]) == (5, 44, 17)
    assert alice["cost_usd"] == pytest.approx(1.75)
    assert bob["rejected"] == 2 and bob["requests"] == 0
    only_bob = json.loads(run(modal_fleet, sys.executable, "-m", "modelfleet", "usage", "--key", "bob", "-f", "json"))
    assert [row["key"] for row in only_bob] == ["bob"]
    later = run(modal_fleet, sys.executable, "-m", "modelfleet", "usage", "--since", "2026-12-03", "-f", "json")
    assert json.loads(later) == []

    # One entry per (day, key, model, container), each counts and names only.
    stored = {pickle.loads(k): json.loads(pickle.loads(v)) for k, v in api.dict_contents(DICT).items()}
    assert len(stored) == 4
    assert all(name.startswith("usage/") for name in stored)
    assert all(set(value) == {*COLUMNS, "container"} for value in stored.values())
    assert {value["container"] for value in stored.values()} == {first["container"], second["container"]}
    assert api.unimplemented == []


def test_fleet_usage_on_modal_with_no_traffic_is_empty(modal_fleet: dict[str, str]) -> None:
    assert json.loads(run(modal_fleet, sys.executable, "-m", "modelfleet", "usage", "--format", "json")) == []
