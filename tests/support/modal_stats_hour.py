"""``python -m tests.support.modal_stats_hour START MODEL...``: an hour of fleet-view collection on a fake clock.

Run in a fresh interpreter pointed at the loopback API (the modal client reads its
server and credentials from the environment when it first connects). The loop is the
fleet's own (``observe.modal_source.collect_for`` over ``observe.modal_watch.ModalWatch``,
what ``fleet top`` and ``fleet metrics`` run on Modal): each round reads Modal's current
stats, and the last hour's stats, metrics, app stats and bill when due. Only time is faked
(the clock starts at START, Unix seconds), so an hour of 15-second rounds takes seconds and
every round's RPCs reach the recorder. Prints one JSON line: each round's counts per model,
and the last round's cost truth and notes.
"""

from __future__ import annotations

import json
import sys

from modelfleet.catalog import load_catalog
from modelfleet.observe.modal_source import ModalStatsReader, collect_for
from modelfleet.observe.modal_watch import ModalWatch
from modelfleet.settings import FleetSettings

HOUR = 3600.0
INTERVAL = 15.0


class FakeClock:
    """Time that moves only when the loop sleeps."""

    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def main(start: float, models: list[str]) -> None:
    clock = FakeClock(start)
    settings = FleetSettings()
    watch = ModalWatch(settings, load_catalog(settings), ModalStatsReader(settings, models), clock=clock.time)
    snapshots = collect_for(watch.round, HOUR, INTERVAL, clock.time, clock.sleep)
    print(
        json.dumps(
            {
                "rounds": [[vars(item) for item in snapshot.current] for snapshot in snapshots],
                "costs": [cost.as_json() for cost in snapshots[-1].costs],
                "notes": snapshots[-1].notes,
            }
        )
    )


if __name__ == "__main__":
    main(float(sys.argv[1]), sys.argv[2:])
