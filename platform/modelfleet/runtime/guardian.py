"""A tiny parent for vLLM that takes its whole process group down with it.

``PR_SET_PDEATHSIG`` only reaches the direct child: vLLM's API server dies with its
parent, but the engine-core and worker processes it spawned do not notice and live on
as orphans holding memory (and, on a GPU, the device). So the engine runs vLLM under
this guardian: the guardian gets SIGTERM when its parent dies, and whenever it ends --
parent gone, stop requested, or vLLM exited by itself -- it clears the process group
it leads. Run as ``python -m modelfleet.runtime.guardian GRACE_SECONDS -- ARGV...``, or
start a command under it from Python with ``spawn`` (vLLM, from ``engine.Engine``; the edge
process in a Modal container, from ``edge_process.EdgeProcess``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import IO

GUARDIAN = Path(__file__)
PR_SET_PDEATHSIG = 1
# The kernel sends PR_SET_PDEATHSIG when the *thread* that forked the child ends, not the
# process: Modal runs enter hooks on threads that may end, so every spawn forks from this
# one thread, which lives as long as the interpreter.
_LAUNCHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="guardian-launcher")


def _die_with_parent() -> None:
    """In the child before exec: own process group, and SIGTERM when the parent dies."""
    os.setpgrp()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    command: list[str],
    *,
    grace: float,
    env: Mapping[str, str],
    output: IO[bytes],
    isolate: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``command`` under a guardian in a process group of its own; returns the guardian.

    SIGTERM to the returned process (or its parent's death) gives ``command`` ``grace``
    seconds to exit, then kills whatever is left of the group. ``isolate``: the guardian
    (and so ``command`` and all it forks) starts in a network namespace of its own with
    loopback only; the caller checks ``netns.namespace_refusal`` first, since a refused
    namespace surfaces here only as "Exception occurred in preexec_fn".
    """
    argv = [sys.executable, str(GUARDIAN), str(grace), "--", *command]
    preexec: Callable[[], None] = _die_with_parent
    if isolate:
        # Imported here, in the parent: this file also runs as a script, where the package
        # may not be importable, and a forked child must not import anything.
        from modelfleet.runtime.netns import isolate_network

        def preexec() -> None:
            _die_with_parent()
            isolate_network()

    return _LAUNCHER.submit(
        subprocess.Popen,
        argv,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        env=dict(env),
        preexec_fn=preexec,
    ).result()


def main(argv: list[str]) -> int:
    """Run ``argv`` in this process group; on SIGTERM or its exit, clear the group. Returns its exit code."""
    grace = float(argv[0])
    command = argv[argv.index("--") + 1 :]
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    while child.poll() is None and not stop.is_set():
        stop.wait(0.2)
    if child.poll() is None:
        # Ask the whole group (vLLM's API server, engine core, workers) to shut down cleanly.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgrp(), signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=grace)
    code = child.poll()
    _kill_rest_of_group()
    if code is None:
        child.wait()
        return -signal.SIGKILL
    return code


def _kill_rest_of_group() -> None:
    """SIGKILL every other member of this process group (vLLM's leftovers), sparing this process."""
    group, me = os.getpgrp(), os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry), signal.SIGKILL)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # A negative code means "killed by signal N"; a shell reports that as 128 + N.
    sys.exit(code if code >= 0 else 128 - code)
