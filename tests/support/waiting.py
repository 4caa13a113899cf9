"""The one way tests wait for a condition: poll it until a deadline, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], timeout: float, *, interval: float = 0.05) -> bool:
    """Poll ``condition`` every ``interval`` seconds until it is true (True) or ``timeout`` passes (False).

    Returns rather than raises, so a test can also assert that something does NOT happen
    within a time (``assert not wait_until(...)``); the caller's assert names what it waited for.
    """
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
