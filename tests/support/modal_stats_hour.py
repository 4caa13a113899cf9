"""``python -m tests.support.modal_stats_hour MODEL...``: an hour of fleet-view collection on a fake clock.

Run in a fresh interpreter pointed at the loopback API (the modal client reads its
server and credentials from the environment when it first connects). The loop is the
fleet's own (``observe.modal_source.collect_for``): only time is faked, so an hour of
15-second rounds takes a few seconds and every round's RPCs reach the recorder.
Prints one JSON line: rounds, and each round's counts per model.
"""

from __future__ import annotations

import json
import sys

from modelfleet.observe.modal_source import ModalStatsReader, collect_for
from modelfleet.settings import FleetSettings

HOUR = 3600.0
INTERVAL = 15.0


class FakeClock:
    """Time that moves only when the loop sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def main(models: list[str]) -> None:
    clock = FakeClock()
    reader = ModalStatsReader(FleetSettings(), models)
    rounds = collect_for(reader.read, HOUR, INTERVAL, clock.time, clock.sleep)
    print(json.dumps({"rounds": [[vars(item) for item in one] for one in rounds]}))


if __name__ == "__main__":
    main(sys.argv[1:])
