"""The Modal app of ONE model: ``modal deploy -m modelfleet.targets.modal.entry --name <prefix>-<model>``.

Which model? ``FLEET_MODAL_BUNDLE`` (set by ``fleet deploy``, and baked into the
image so the container rebuilds the identical app) or ``FLEET_MODEL=<folder>`` for
a deploy by hand. Modal wants its classes and functions at module level, so this
module holds only the declarations; every argument comes from ``app`` and every
hook body from ``serving``.
"""

from __future__ import annotations

import modal

from modelfleet.targets.modal.app import (
    concurrency_options,
    run_seed,
    seed_options,
    serving_options,
    web_options,
    weights_volume,
)
from modelfleet.targets.modal.bundle import load_bundle
from modelfleet.targets.modal.image import base_image, seed_image, serving_image
from modelfleet.targets.modal.serving import EDGE_PORT, EDGE_STARTUP_TIMEOUT, ServingRuntime

BUNDLE = load_bundle()
_BASE = base_image(BUNDLE)
# The seed function commits the very volume object it mounts.
_WEIGHTS = weights_volume(BUNDLE)

app = modal.App(BUNDLE.app_name)


@app.cls(**serving_options(BUNDLE, serving_image(_BASE)))
@modal.concurrent(**concurrency_options(BUNDLE))
class Server:
    """vLLM behind the edge; snapshotted asleep, woken on restore."""

    # Modal refuses snap=True hooks on a class without memory snapshots: one shape per case.
    if BUNDLE.spec.snapshot.enabled:

        @modal.enter(snap=True)
        def prepare(self) -> None:
            """Before the snapshot: start, warm up and put the engine to sleep."""
            self.runtime = ServingRuntime(BUNDLE)
            self.runtime.prepare_snapshot()

        @modal.enter(snap=False)
        def boot(self) -> None:
            """After restore (or at a cold start): wake or start the engine; record the boot kind."""
            self.runtime.start()

    else:

        @modal.enter()
        def boot(self) -> None:
            """A plain cold start: start the engine and record it."""
            self.runtime = ServingRuntime(BUNDLE)
            self.runtime.start()

    @modal.web_server(**web_options(BUNDLE, EDGE_PORT, EDGE_STARTUP_TIMEOUT))
    def serve(self) -> None:
        """The edge: public OpenAI routes and /health only."""
        self.runtime.start_edge()

    @modal.exit()
    def stop(self) -> None:
        """Stop vLLM with the container."""
        self.runtime.stop()


@app.function(**seed_options(BUNDLE, seed_image(_BASE), _WEIGHTS))
def seed() -> dict[str, object]:
    """Put the model's pinned weights on the weights volume (verified; a seeded revision is skipped)."""
    return run_seed(BUNDLE, _WEIGHTS)
