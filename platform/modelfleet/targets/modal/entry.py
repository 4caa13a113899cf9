"""The Modal app of ONE model: ``modal deploy -m modelfleet.targets.modal.entry --name <prefix>-<model>``.

Which model? ``FLEET_MODAL_BUNDLE`` (set by ``fleet deploy``, and baked into the
image so the container rebuilds the identical app) or ``FLEET_MODEL=<folder>`` for
a deploy by hand. Modal wants its classes and functions at module level, so this
module holds only the declarations; every argument comes from ``app`` and every
hook body from ``serving``. Seeding is not here: it is an app of its own
(``seed_entry``), so a seed can never start this app's GPU class.

The class is a Modal Server (``@app.server``) or the classic web endpoint
(``@app.cls`` + ``@modal.web_server``), as ``primitive.serving_primitive`` decides from
the spec; the hooks are the same in both, and in both the edge is its own process that
``ServingRuntime.start`` launches once vLLM serves. Either way the class is named
``Server`` (``modal.Server.from_name(app, "Server")`` or ``modal.Cls.from_name(...)``).
"""

from __future__ import annotations

from typing import Any

import modal

from modelfleet.targets.modal.app import cache_volume, cls_options, concurrency_options, server_options, web_options
from modelfleet.targets.modal.bundle import load_bundle
from modelfleet.targets.modal.image import base_image, serving_image
from modelfleet.targets.modal.primitive import serving_primitive
from modelfleet.targets.modal.serving import ServingRuntime

BUNDLE = load_bundle()
PRIMITIVE = serving_primitive(BUNDLE.spec)
# The snapshot hook commits the very volume object the class mounts.
_CACHE = cache_volume(BUNDLE)
_IMAGE = serving_image(base_image(BUNDLE))

app = modal.App(BUNDLE.app_name)


def _serving_class(user_cls: type[Any]) -> Any:
    """Declare the class as a Modal Server, or as the classic class with ``@modal.concurrent``."""
    if PRIMITIVE == "server":
        # No @modal.concurrent on a Server: target/max concurrency are app.server parameters.
        return app.server(**server_options(BUNDLE, _IMAGE, _CACHE))(user_cls)
    return app.cls(**cls_options(BUNDLE, _IMAGE, _CACHE))(modal.concurrent(**concurrency_options(BUNDLE))(user_cls))


@_serving_class
class Server:
    """vLLM behind the edge; snapshotted asleep (GPU) or preloaded (memory only), then restored."""

    # Modal refuses snap=True hooks without memory snapshots (on a class and on a Server alike).
    if BUNDLE.spec.snapshot.enabled:

        @modal.enter(snap=True)
        def prepare(self) -> None:
            """Before the snapshot: what the snapshot should hold, and the compile cache committed."""
            self.runtime = ServingRuntime(BUNDLE, commit_cache=_CACHE.commit)
            self.runtime.prepare_snapshot()

        @modal.enter(snap=False)
        def boot(self) -> None:
            """After restore (or at a cold start): a serving engine, the edge listening; the boot recorded."""
            self.runtime.start()

    else:

        @modal.enter()
        def boot(self) -> None:
            """A plain cold start: the engine, then the edge."""
            self.runtime = ServingRuntime(BUNDLE, commit_cache=_CACHE.commit)
            self.runtime.start()

    if PRIMITIVE == "web_server":

        @modal.web_server(**web_options(BUNDLE))
        def serve(self) -> None:
            """Modal's relay target: the edge process the enter hook started (public routes and /health)."""
            self.runtime.start_edge()

    @modal.exit()
    def stop(self) -> None:
        """Drain the edge, then stop vLLM."""
        self.runtime.stop()
