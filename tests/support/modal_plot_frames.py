"""``python -m tests.support.modal_plot_frames SINCE [MODEL...]``: what ``fleet plots`` would draw, as one JSON line.

Run in a fresh interpreter pointed at the loopback API (the modal client reads its server
and credentials from the environment when it first connects), through the fleet's own entry
point (``observe.history.plot_frames``), so a test can check the figures behind the PNGs.
"""

from __future__ import annotations

import json
import sys
import time

from modelfleet.catalog import load_catalog
from modelfleet.observe.history import plot_frames
from modelfleet.settings import FleetSettings


def main(since: str, models: list[str]) -> None:
    settings = FleetSettings()
    source = plot_frames(settings, load_catalog(settings), models or None, since, time.time())
    print(json.dumps({"frames": source.frames, "notes": source.notes, "empty": source.empty}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
