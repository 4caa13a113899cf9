"""Fleet state: what was deployed, per model, so ``fleet plan`` can diff against it.

On Modal the state lives in a ``modal.Dict`` (written by deploys); for pull-request
checks a JSON file export of it is enough (``fleet plan --state FILE``), so the plan
works offline.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelfleet.errors import FleetError
from modelfleet.files import write_atomic


class DeployRecord(BaseModel):
    """One model's last successful deploy."""

    model_config = ConfigDict(extra="forbid")

    app: str = Field(description="App name (`<prefix>-<model>`).")
    spec_hash: str = Field(description="Hash of the effective spec that was deployed.")
    spec: dict[str, Any] = Field(description="The effective spec that was deployed (for field diffs).")
    tag: str = Field(default="", description="Git commit the deploy was tagged with.")
    version: str = Field(default="", description="App version the platform assigned.")
    deployed_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    environment: str = Field(default="", description="The fleet environment deployed to (fleet.toml [environments]).")
    image: str = Field(
        default="",
        description="Digest of the image definition the app was built from (the bundle baked into it, "
        "at the commit in `tag`): equal digests at one commit build the same image.",
    )
    promoted_from: str = Field(
        default="", description="`<environment> <version>` this deploy was promoted from; empty for a direct deploy."
    )


class FleetState(BaseModel):
    """Every deployed model by folder name."""

    model_config = ConfigDict(extra="forbid")

    models: dict[str, DeployRecord] = Field(default_factory=dict)
    environment: str = Field(default="", description="The environment this state is of (set on export).")
    exported_at: str = Field(default="", description="When the state was read from the target (set on export).")


class StateFileError(FleetError):
    """A saved state file is missing or malformed."""


def load_state_file(path: Path) -> FleetState:
    """Read a state export; an empty file or ``{}`` means nothing is deployed."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise StateFileError(
            f"{path}: no such state file; export one with `fleet state export` or pass another --state"
        ) from None
    if not text.strip():
        return FleetState()
    try:
        return FleetState.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as error:
        raise StateFileError(
            f"{path}: not a fleet state file ({error.__class__.__name__}: {str(error).splitlines()[0]})"
        ) from None


def save_state_file(state: FleetState, path: Path) -> None:
    """Write a state export atomically (a half-written file must never be read as state)."""
    write_atomic(path, state.model_dump_json(indent=2) + "\n")
