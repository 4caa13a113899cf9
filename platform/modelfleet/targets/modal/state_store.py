"""Fleet state on Modal: what each model's app runs, in a named ``modal.Dict``.

Three kinds of keys:
- ``model/<name>``: the live deploy of a model (what ``fleet plan`` diffs against);
- ``version/<name>/<vN>``: the record of every version deployed through the fleet, so
  a rollback to ``vN`` can restore what ``vN`` actually serves;
- ``passed/<name>/<vN>``: a version that passed its checks here (``modelfleet.passes``),
  what ``fleet promote`` asks of the environment it promotes from.
One Dict per fleet environment: the Dict is looked up in the environment's own Modal
environment, where Modal keeps each environment's objects apart.
Values are the records' JSON text: readable by any client version, no pickles of
project classes.
"""

from __future__ import annotations

import threading
from typing import Any

import modal

from modelfleet.settings import FleetSettings
from modelfleet.state import DeployRecord, FleetState

_MODEL = "model/"
_VERSION = "version/"


class StateStore:
    """Read and write the fleet state Dict of one Modal environment."""

    def __init__(self, settings: FleetSettings) -> None:
        self.name = settings.state_dict
        self.environment = settings.modal_environment
        self._dict: Any = None
        self._lock = threading.Lock()  # parallel deploys record from several threads

    def _store(self) -> Any:
        with self._lock:
            if self._dict is None:
                self._dict = modal.Dict.from_name(self.name, environment_name=self.environment, create_if_missing=True)
            return self._dict

    def key_values(self) -> Any:
        """The Dict itself, for the records kept beside the deploys (passes)."""
        return self._store()

    def read(self) -> FleetState:
        """Every model's live record."""
        state = FleetState()
        for key, value in self._store().items():
            if isinstance(key, str) and key.startswith(_MODEL):
                state.models[key.removeprefix(_MODEL)] = DeployRecord.model_validate_json(value)
        return state

    def record(self, model: str, record: DeployRecord) -> None:
        """A deploy (or rollback) made ``record`` live."""
        store = self._store()
        store.put(f"{_MODEL}{model}", record.model_dump_json())
        if record.version:
            store.put(f"{_VERSION}{model}/{record.version}", record.model_dump_json())

    def at_version(self, model: str, version: str) -> DeployRecord | None:
        """What ``version`` of the model's app was deployed with, if the fleet deployed it."""
        raw = self._store().get(f"{_VERSION}{model}/{version}")
        return DeployRecord.model_validate_json(raw) if raw else None

    def forget(self, model: str) -> None:
        """The model's app is gone (or runs something the fleet did not record)."""
        self._store().pop(f"{_MODEL}{model}", None)
