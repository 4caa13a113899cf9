"""What runs on the local target: one JSON record per model under ``.fleet/runs/``.

The supervisor process of a model writes its record; the CLI only reads it (and
removes it after ``fleet down``). Writes are atomic so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from modelfleet.files import write_atomic

# sun_path holds 108 bytes including the terminating NUL (man 7 unix).
MAX_SOCKET_PATH = 108
RunState = Literal["starting", "ready", "restarting", "failed", "stopping"]


@dataclass
class LocalRun:
    """One model's processes, ports and health as its supervisor last saw them."""

    model: str
    spec_hash: str
    supervisor_pid: int
    edge_port: int
    engine_port: int = 0
    engine_pid: int = 0
    state: RunState = "starting"
    started_at: float = field(default_factory=time.time)
    ready_at: float = 0.0
    restarts: int = 0
    last_error: str = ""
    # ``[privacy] egress`` as enforced: "blocked (verified)", "allowed", ... (``egress.py``), and what the probe met.
    egress: str = ""
    egress_probe: str = ""

    @property
    def url(self) -> str:
        """The edge's base URL: what clients call."""
        return f"http://127.0.0.1:{self.edge_port}"


class RunBook:
    """The ``.fleet/runs`` folder: read, write and forget run records."""

    def __init__(self, state_path: Path) -> None:
        self.folder = state_path / "runs"
        self.logs = state_path / "logs"

    def path(self, model: str) -> Path:
        """Where a model's record lives."""
        return self.folder / f"{model}.json"

    def log_path(self, model: str) -> Path:
        """vLLM's and the supervisor's output for a model."""
        return self.logs / f"{model}.log"

    def socket_path(self, model: str) -> Path:
        """The Unix socket a model's vLLM serves on (``--uds``): beside the run records, or in the temp folder.

        A socket's path must fit ``sun_path`` (108 bytes with its NUL, man 7 unix); a deep
        state folder gets a short folder of its own in /tmp, named after the state folder.
        """
        path = self.folder.parent / "sockets" / f"{model}.sock"
        if len(os.fsencode(path)) < MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha256(os.fsencode(self.folder.parent.resolve())).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"modelfleet-{digest}" / f"{model}.sock"

    def read(self, model: str) -> LocalRun | None:
        """The record, or None when the model is not running (or the record is unreadable)."""
        try:
            data = json.loads(self.path(model).read_text())
            return LocalRun(**data)
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None

    def write(self, run: LocalRun) -> None:
        """Replace the record atomically."""
        write_atomic(self.path(run.model), json.dumps(asdict(run), indent=2))

    def forget(self, model: str) -> None:
        """Remove a model's record (it no longer runs)."""
        self.path(model).unlink(missing_ok=True)

    def all(self) -> list[LocalRun]:
        """Every record on disk."""
        if not self.folder.is_dir():
            return []
        runs = [self.read(p.stem) for p in sorted(self.folder.glob("*.json"))]
        return [r for r in runs if r is not None]
