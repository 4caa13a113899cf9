"""The fleet view over time: each ``fleet top`` frame appended as one JSON line, read back by ``fleet plots``.

Only the view's numbers are stored (counts, latencies, rates, dollars): no prompt, completion
or token ever reaches this file. ``plot_frames`` is what ``fleet plots`` draws: these recorded
frames on the local target; on Modal, Modal's own figures for the window (modal_history),
with any recorded frames beside them -- so a CI runner that never ran ``fleet top`` still
gets pictures.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelfleet.catalog import Catalog
from modelfleet.observe.view import ModelView
from modelfleet.settings import FleetSettings

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


@dataclass(frozen=True)
class PlotFrames:
    """What ``fleet plots`` draws for a window, one line per gap, and why nothing is drawn when nothing is."""

    frames: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    empty: str = ""
    """The one-line reason when ``frames`` holds no model row (else empty)."""


def plot_frames(
    settings: FleetSettings, catalog: Catalog, models: list[str] | None, since_text: str, now: float
) -> PlotFrames:
    """The frames of the last ``since_text`` for ``models`` (None: every model) from the target's sources.

    Local: the frames ``fleet top`` recorded. Modal: Modal's figures for the window (refused
    beyond Modal's limit, modal_history.check_window), merged with recorded frames.
    """
    seconds = parse_since(since_text)
    path = history_path(settings.state_path)
    recorded = only_models(frames_since(path, now - seconds), models)
    if settings.target != "modal":
        return PlotFrames(recorded, empty="" if _has_rows(recorded) else _nothing_recorded(since_text, path, models))
    from modelfleet.observe.modal_history import check_window, modal_history

    check_window(seconds, since_text)
    wanted = sorted(catalog.models) if models is None else models
    modal = modal_history(settings, catalog, wanted, now - seconds, now)
    frames = sorted([*recorded, *modal.frames], key=lambda frame: float(frame["at"]))
    if modal.costs:  # last: Modal's bill of an hour, read now, wins over a frame recorded while it was running
        frames.append({"at": now, "models": [], "costs": modal.costs})
    if _has_rows(frames):
        return PlotFrames(frames, modal.notes)
    where = f"Modal environment {settings.modal_environment}"
    empty = (
        f"fleet plots: nothing to draw since {since_text}: Modal has no figures of {', '.join(wanted) or 'any model'} "
        f"in {where} (notes above say why) and {path} has no recorded frames; deploy a model and try again"
    )
    return PlotFrames(frames, modal.notes, empty)


def _nothing_recorded(since_text: str, path: Path, models: list[str] | None) -> str:
    which = "" if models is None else f" for {', '.join(models)}"
    return (
        f"fleet plots: no frames since {since_text} in {path}{which}; "
        "run `fleet top` (it records each frame) and try again"
    )


def only_models(frames: list[dict[str, Any]], models: list[str] | None) -> list[dict[str, Any]]:
    """The frames with only ``models``' rows and costs (None: unchanged)."""
    if models is None:
        return frames
    keep = set(models)
    kept: list[dict[str, Any]] = []
    for frame in frames:
        one = {**frame, "models": [row for row in frame["models"] if row["model"] in keep]}
        if "costs" in frame:
            one["costs"] = [cost for cost in frame["costs"] if cost["model"] in keep]
        kept.append(one)
    return kept


def _has_rows(frames: list[dict[str, Any]]) -> bool:
    return any(frame["models"] for frame in frames)
