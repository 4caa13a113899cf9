"""Process facts the local target and the engine read through psutil: alive, tree memory, group members."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from modelfleet.runtime.engine import group_members
from modelfleet.targets.local.processes import is_alive, tree_rss_bytes
from tests.support.waiting import wait_until

# A parent that starts one child holding ~64 MiB, then sleeps; both in a new process group.
_PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', "
    "'import sys, time; b = bytearray(64 << 20); print(1, flush=True); time.sleep(600)'], stdout=subprocess.PIPE)\n"
    "child.stdout.readline()\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(600)\n"
)


@pytest.fixture
def parent_and_child() -> Iterator[tuple[subprocess.Popen[str], int]]:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    yield parent, child
    os.killpg(parent.pid, 9)
    parent.wait()


def test_the_tree_memory_counts_the_children(parent_and_child: tuple[subprocess.Popen[str], int]) -> None:
    parent, child = parent_and_child
    assert tree_rss_bytes(parent.pid) >= tree_rss_bytes(child) >= 64 << 20
    assert tree_rss_bytes(parent.pid) > tree_rss_bytes(child)


def test_a_process_group_lists_parent_and_child(parent_and_child: tuple[subprocess.Popen[str], int]) -> None:
    parent, child = parent_and_child
    assert set(group_members(parent.pid)) == {parent.pid, child}


def test_a_zombie_is_not_alive_and_a_gone_pid_neither() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    # Not reaped yet: the kernel keeps a zombie until wait().
    assert wait_until(lambda: not is_alive(process.pid), 10), "an exited child still reads as alive"
    assert group_members(os.getpgid(0)).count(process.pid) == 0
    process.wait()
    assert not is_alive(process.pid) and not is_alive(0) and tree_rss_bytes(process.pid) == 0
