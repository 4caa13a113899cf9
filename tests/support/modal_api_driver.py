"""Run one ``ModalTarget`` verb in a fresh process and print its result as JSON.

Why a separate process: the modal client keeps one connection (and its config) per
process, so a test pointing a client at a fresh ``ModalApiRecorder`` must start a new
interpreter with the recorder's environment -- exactly how ``fleet`` runs in CI.

    python -m tests.support.modal_api_driver deploy TAG [MODEL...]
    python -m tests.support.modal_api_driver state|orphans
    python -m tests.support.modal_api_driver rollback MODEL [VERSION]
    python -m tests.support.modal_api_driver history|stop-containers|endpoint MODEL
    python -m tests.support.modal_api_driver status|teardown|seed [MODEL...]

A ``FleetError`` prints ``error: <message>`` on stderr and exits 1, like the CLI.
Progress events go to stderr, one ``event: model stage detail`` line each.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any

from modelfleet.catalog import load_catalog
from modelfleet.errors import FleetError
from modelfleet.settings import FleetSettings
from modelfleet.targets import get_target
from modelfleet.targets.modal import ModalTarget


def _event(model: str, stage: str, detail: str) -> None:
    print(f"event: {model} {stage} {detail}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> Any:
    settings = FleetSettings()
    target = get_target(settings)
    assert isinstance(target, ModalTarget), f"FLEET_TARGET must be modal, got {target.name}"
    catalog = load_catalog(settings)
    verb, args = argv[0], argv[1:]

    def models(names: list[str]) -> list[Any]:
        return [catalog.require(n) for n in names] if names else sorted(catalog.models.values(), key=lambda m: m.name)

    if verb == "deploy":
        return [asdict(o) for o in target.deploy(models(args[1:]), tag=args[0], on_event=_event)]
    if verb == "seed":
        return [asdict(o) for o in target.seed(models(args), on_event=_event)]
    if verb == "state":
        return target.deployed_state().model_dump(mode="json")
    if verb == "orphans":
        return target.orphans(catalog)
    if verb == "rollback":
        return asdict(target.rollback(catalog.require(args[0]), args[1] if len(args) > 1 else None))
    if verb == "history":
        return target.history(catalog.require(args[0]))
    if verb == "stop-containers":
        return target.force_cold_start(catalog.require(args[0]))
    if verb == "endpoint":
        return target.endpoint(catalog.require(args[0]))
    if verb == "status":
        return [asdict(s) for s in target.status(models(args))]
    if verb == "teardown":
        return [asdict(o) for o in target.teardown(models(args))]
    raise SystemExit(f"unknown verb {verb}")


if __name__ == "__main__":
    try:
        print(json.dumps(main(sys.argv[1:])))
    except FleetError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
