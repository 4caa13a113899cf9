"""The pass book of a target's environment: where ``fleet smoke`` records a pass, ``fleet promote`` reads it.

Chosen like ``get_target`` chooses the target: on Modal the environment's state Dict, on
the local target a file in the environment's state folder. Neither target class changes for
it; only the store does.
"""

from __future__ import annotations

from modelfleet.passes import PASSES_FILE, PassBook, PassRecord
from modelfleet.settings import FleetSettings
from modelfleet.state import JsonFileStore
from modelfleet.targets.base import Target


def pass_book(settings: FleetSettings) -> PassBook:
    """The pass records of ``settings``'s active environment."""
    if settings.target == "modal":
        from modelfleet.targets.modal.state_store import StateStore

        return PassBook(StateStore(settings).key_values())
    return PassBook(JsonFileStore(settings.state_path / PASSES_FILE))


def record_pass(target: Target, model: str, checks: tuple[str, ...]) -> PassRecord | None:
    """Record that the model's live deploy on ``target`` passed ``checks``; None when nothing is recorded as live.

    Called where ``fleet smoke`` (and, through it, the quality gate) succeeds, so an
    environment's passes are exactly its successful checks.
    """
    record = target.deployed_state().models.get(model)
    if record is None:
        return None
    passed = PassRecord.of(record, model=model, environment=target.settings.env or "", checks=checks)
    pass_book(target.settings).record(passed)
    return passed
