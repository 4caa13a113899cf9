"""The seed app of ONE model: ``modal run -m modelfleet.targets.modal.seed_entry::seed``.

An app of its own, apart from the serving app (``entry``): ``modal run`` of a
module builds every function and class in it, so seeding through the serving app
could start its GPU class. This app has one CPU function and creates the weights
volume on first use; the serving app only looks the volume up. The model comes from
``FLEET_MODAL_BUNDLE`` (or ``FLEET_MODEL``), as for ``entry``.
"""

from __future__ import annotations

import modal

from modelfleet.targets.modal.app import seed_app_name, seed_options, weights_volume
from modelfleet.targets.modal.bundle import load_bundle
from modelfleet.targets.modal.image import base_image, seed_image
from modelfleet.targets.modal.seeding import run_seed

BUNDLE = load_bundle()
# The seed function commits the very volume object it mounts.
_WEIGHTS = weights_volume(BUNDLE, create=True)

app = modal.App(seed_app_name(BUNDLE))


@app.function(**seed_options(BUNDLE, seed_image(base_image(BUNDLE)), _WEIGHTS))
def seed() -> dict[str, object]:
    """Put the model's pinned weights on the weights volume (verified; a seeded revision is skipped)."""
    return run_seed(BUNDLE, _WEIGHTS)
