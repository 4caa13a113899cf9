"""Targets: where the fleet runs. One interface, two implementations (local, modal).

The CLI and the Makefile never branch on the target: they call ``get_target``.
"""

from __future__ import annotations

from modelfleet.settings import FleetSettings
from modelfleet.targets.base import Target


def get_target(settings: FleetSettings) -> Target:
    """The target ``settings.target`` names (``local`` by default)."""
    if settings.target == "modal":
        from modelfleet.targets.modal import ModalTarget

        return ModalTarget(settings)
    from modelfleet.targets.local import LocalTarget

    return LocalTarget(settings)
