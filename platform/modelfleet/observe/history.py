"""The fleet view over time: each ``fleet top`` frame appended as one JSON line, read back by ``fleet plots``.

Only the view's numbers are stored (counts, latencies, rates, dollars): no prompt, completion
or token ever reaches this file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from modelfleet.observe.view import ModelView

HISTORY_FILE = "observe/top.jsonl"


def history_path(state_path: Path) -> Path:
    """Where the local state keeps the frames."""
    return state_path / HISTORY_FILE


def record_frame(
    path: Path, views: list[ModelView], at: float | None = None, costs: list[dict[str, Any]] | None = None
) -> None:
    """Append one frame (every model's view, stamped with the time; the platform's cost truth when it has one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame: dict[str, Any] = {"at": time.time() if at is None else at, "models": [v.as_json() for v in views]}
    if costs:
        frame["costs"] = costs
    line = json.dumps(frame)
    with path.open("a") as file:
        file.write(line + "\n")


def frames_since(path: Path, since: float) -> list[dict[str, Any]]:
    """Frames taken at ``since`` or later, oldest first (a torn last line is skipped)."""
    if not path.is_file():
        return []
    frames: list[dict[str, Any]] = []
    for line in path.read_text().splitlines():
        try:
            frame = json.loads(line)
        except json.JSONDecodeError:
            continue
        if float(frame["at"]) >= since:
            frames.append(frame)
    return frames


def parse_since(text: str) -> float:
    """Seconds in ``30m``, ``6h``, ``2d`` (what ``--since`` takes)."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"--since: {text!r} is not a duration; write a number and a unit: 30m, 6h, 2d")
    return int(text[:-1]) * units[text[-1]]
