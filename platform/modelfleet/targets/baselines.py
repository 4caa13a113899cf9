"""Where the quality baselines live for the fleet's target: beside the fleet state.

On Modal, in the fleet state's ``modal.Dict`` (``settings.state_dict``), as
``baseline/<model>/<key>`` entries next to the deploy records, so every CI run and every
laptop sees the same reviewed baselines. ``modal.Dict`` has the ``get``/``put``/``items``
the store uses (modal 1.6.4, modal/dict.py: ``_Dict.get(key, default=None)``,
``_Dict.put(key, value, *, skip_if_exists=False)``, ``_Dict.items()``). Locally, in
``<state dir>/baselines.json``.

Baselines describe a model, not an environment: a candidate gated in staging must be
compared with the baselines production recorded, so ``environment`` lets the caller name
the Modal environment whose state holds them (default: the settings' own).
"""

from __future__ import annotations

from modelfleet.settings import FleetSettings
from modelfleet.state import BaselineStore, JsonFileStore

BASELINES_FILE = "baselines.json"


def baseline_store(settings: FleetSettings, *, environment: str | None = None) -> BaselineStore:
    """The baselines of ``settings.target``: the fleet state's modal.Dict, or a JSON file locally."""
    if settings.target == "modal":
        import modal

        store = modal.Dict.from_name(
            settings.state_dict, environment_name=environment or settings.modal_environment, create_if_missing=True
        )
        return BaselineStore(store)
    return BaselineStore(JsonFileStore(settings.state_path / BASELINES_FILE))
