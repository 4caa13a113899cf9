"""The Modal app of ONE model: ``modal deploy -m modelfleet.targets.modal.entry --name <prefix>-<model>``.

Which model? ``FLEET_MODAL_BUNDLE`` (set by ``fleet deploy``, and baked into the
image so the container rebuilds the identical app) or ``FLEET_MODEL=<folder>`` for
a deploy by hand. Modal wants its classes and functions at module level, so this
module holds only the declarations; every argument comes from ``app`` and every
hook body from ``serving``. Seeding is not here: it is an app of its own
(``seed_entry``), so a seed can never start this app's GPU class.
"""

from __future__ import annotations

import modal

from modelfleet.targets.modal.app import cache_volume, concurrency_options, serving_options, web_options
from modelfleet.targets.modal.bundle import load_bundle
from modelfleet.targets.modal.image import base_image, serving_image
from modelfleet.targets.modal.serving import EDGE_PORT, EDGE_STARTUP_TIMEOUT, ServingRuntime

BUNDLE = load_bundle()
# The snapshot hook commits the very volume object the class mounts.
_CACHE = cache_volume(BUNDLE)

app = modal.App(BUNDLE.app_name)


@app.cls(**serving_options(BUNDLE, serving_image(base_image(BUNDLE)), _CACHE))
@modal.concurrent(**concurrency_options(BUNDLE))
class Server:
    """vLLM behind the edge; snapshotted asleep (GPU) or preloaded (memory only), then restored."""

    # Modal refuses snap=True hooks on a class without memory snapshots: one shape per case.
    if BUNDLE.spec.snapshot.enabled:

        @modal.enter(snap=True)
        def prepare(self) -> None:
            """Before the snapshot: what the snapshot should hold, and the compile cache committed."""
            self.runtime = ServingRuntime(BUNDLE, commit_cache=_CACHE.commit)
            self.runtime.prepare_snapshot()

        @modal.enter(snap=False)
        def boot(self) -> None:
            """After restore (or at a cold start): a serving engine; record the boot kind."""
            self.runtime.start()

    else:

        @modal.enter()
        def boot(self) -> None:
            """A plain cold start: start the engine and record it."""
            self.runtime = ServingRuntime(BUNDLE, commit_cache=_CACHE.commit)
            self.runtime.start()

    @modal.web_server(**web_options(BUNDLE, EDGE_PORT, EDGE_STARTUP_TIMEOUT))
    def serve(self) -> None:
        """The edge: public OpenAI routes and /health only."""
        self.runtime.start_edge()

    @modal.exit()
    def stop(self) -> None:
        """Stop vLLM with the container."""
        self.runtime.stop()
