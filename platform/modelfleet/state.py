"""Fleet state: what was deployed, per model, so ``fleet plan`` can diff against it.

On Modal the state lives in a ``modal.Dict`` (written by deploys); for pull-request
checks a JSON file export of it is enough (``fleet plan --state FILE``), so the plan
works offline.

Beside the deploys, the fleet state keeps each model's quality baselines (``BaselineStore``):
the logprob fingerprint a reviewed deploy gave, keyed by what it is valid for.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

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


class BaselineKey(BaseModel):
    """What a quality baseline is valid for: the same weights, served the same way, on the same hardware and vLLM.

    A logprob fingerprint is only comparable between deploys that agree on all five; a
    deploy that changes one of them meets no baseline and the gate says which one changed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    revision: str = Field(description="Weights revision (HF commit, PyPI version + sha256, or local path).")
    dtype: str = Field(description="Compute dtype vLLM serves with.")
    quantization: str = Field(description="vLLM quantization method, or 'none'.")
    gpu: str = Field(description="GPU type (or 'cpu' on the local target).")
    vllm_version: str = Field(description="vLLM version serving.")

    def slug(self) -> str:
        """A short stable name for the key: the store's key and what reports print."""
        canonical = json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def differences(self, other: BaselineKey) -> list[str]:
        """``field: old -> new`` for each field that differs from ``other`` (``self`` is the old one)."""
        mine, theirs = self.model_dump(), other.model_dump()
        return [f"{name} {mine[name]} -> {theirs[name]}" for name in mine if mine[name] != theirs[name]]


class StoredBaseline(BaseModel):
    """One baseline as the store holds it: its key, when it was recorded, from which version, and its JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: BaselineKey
    recorded_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    version: str = Field(default="", description="The deploy the baseline was taken from.")
    reason: str = Field(default="", description="Why it was recorded: 'first deploy' or 'fleet baseline'.")
    fingerprint: dict[str, Any] = Field(description="The fingerprint (postdeploy.fingerprint.Fingerprint's JSON).")


class KeyValueStore(Protocol):
    """The part of ``modal.Dict``'s interface the baselines use (a dict-backed file store has it too)."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def put(self, key: str, value: Any) -> Any: ...
    def items(self) -> Any: ...


_BASELINE = "baseline/"


class BaselineStore:
    """Every model's quality baselines, under ``baseline/<model>/<key slug>`` in the fleet's state store.

    On Modal the store is the fleet state's ``modal.Dict`` (values are JSON text, as the deploy
    records are: readable by any client version); locally a JSON file in the state folder.
    """

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store

    def get(self, model: str, key: BaselineKey) -> StoredBaseline | None:
        """The baseline recorded for exactly this key, if any."""
        raw = self.store.get(f"{_BASELINE}{model}/{key.slug()}")
        return StoredBaseline.model_validate_json(raw) if raw else None

    def all(self, model: str) -> list[StoredBaseline]:
        """Every baseline of the model, newest first (to say what changed when the key has none)."""
        prefix = f"{_BASELINE}{model}/"
        found = [
            StoredBaseline.model_validate_json(value)
            for key, value in self.store.items()
            if isinstance(key, str) and key.startswith(prefix)
        ]
        return sorted(found, key=lambda b: b.recorded_at, reverse=True)

    def put(self, model: str, baseline: StoredBaseline) -> None:
        """Record (or replace) the baseline of ``baseline.key``."""
        self.store.put(f"{_BASELINE}{model}/{baseline.key.slug()}", baseline.model_dump_json())


class JsonFileStore:
    """A ``KeyValueStore`` in one JSON file, written atomically (the local target's baselines)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as error:
            raise StateFileError(f"{self.path}: not a JSON object ({error}); remove it to start over") from None
        if not isinstance(data, dict):
            raise StateFileError(f"{self.path}: expected a JSON object, got {type(data).__name__}")
        return data

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default``."""
        return self._read().get(key, default)

    def put(self, key: str, value: Any) -> None:
        """Set ``key`` and write the whole file atomically."""
        data = self._read()
        data[key] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def items(self) -> list[tuple[str, Any]]:
        """Every (key, value)."""
        return list(self._read().items())
