"""Build a model's Modal app in this process, exactly as ``modal deploy -m ENTRY`` builds it.

Why: a ``modal deploy`` process per model spent ~1.5 CPU-seconds importing modal,
pydantic and the platform before sending its first request (``bench/deploy_scale.py
--breakdown``); ``fleet deploy-all`` of 50 models on two cores was bound by that start-up,
not by Modal. Importing the app module once per model inside the deploying process costs
a few tens of milliseconds instead.

The container must still rebuild the very same app. It finds its app by the function
definition's ``module_name`` and class name: Modal's container runtime imports
``modelfleet.targets.modal.entry`` and takes ``Server`` from it
(modal/_runtime/user_code_imports.py), and that import builds the app from the
``FLEET_MODAL_BUNDLE`` baked into the image (``image.serving_env``). ``modal deploy -m``
imports that module with ``importlib.import_module`` (modal/cli/import_refs.py,
``import_app_from_ref``), so the module is ``sys.modules[ENTRY_MODULE]`` while its class is
decorated, and Modal records ``module.__spec__.name`` and the package's folder
(modal/_utils/function_utils.py, ``FunctionInfo.__init__``, via ``inspect.getmodule``). Here
the same module source is executed as a fresh module object of the same name, registered in
``sys.modules`` while it runs, with the bundle in ``FLEET_MODAL_BUNDLE`` -- so the definitions
sent are those of ``modal deploy -m`` (tests/contract/test_modal_inprocess_deploy.py compares
them request by request).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from types import ModuleType

import modal

from modelfleet.targets.modal.bundle import BUNDLE_ENV, ModelBundle

ENTRY_MODULE = "modelfleet.targets.modal.entry"

# The entry module reads its bundle from the environment and must be the module of that name
# while it runs: one build at a time. A build is short (the imports it needs are done once).
_BUILD_LOCK = threading.Lock()


class AppBuildError(Exception):
    """The app module failed while it was built; the message is the module's own error."""


def build_app(bundle: ModelBundle) -> modal.App:
    """A fresh ``modal.App`` for ``bundle``, declared by ``ENTRY_MODULE`` as ``modal deploy -m`` would.

    An error raised by the module (a spec the app code refuses, say) becomes an
    ``AppBuildError`` whose message is that error's last line, as the CLI printed it.
    """
    spec = importlib.util.find_spec(ENTRY_MODULE)
    if spec is None or spec.loader is None:
        raise AppBuildError(f"ModuleNotFoundError: No module named {ENTRY_MODULE!r}")
    with _BUILD_LOCK:
        saved_module = sys.modules.get(ENTRY_MODULE)
        saved_bundle = os.environ.get(BUNDLE_ENV)
        module: ModuleType = importlib.util.module_from_spec(spec)
        sys.modules[ENTRY_MODULE] = module
        os.environ[BUNDLE_ENV] = bundle.to_env()
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            raise AppBuildError(f"{type(error).__name__}: {error}") from error
        finally:
            _restore(saved_module, saved_bundle)
    app = getattr(module, "app", None)
    if not isinstance(app, modal.App):
        raise AppBuildError(f"{ENTRY_MODULE} declares no modal.App named `app`")
    return app


def _restore(module: ModuleType | None, bundle: str | None) -> None:
    """Put back whatever this process had before the build (usually: no entry module, no bundle)."""
    if module is None:
        sys.modules.pop(ENTRY_MODULE, None)
    else:
        sys.modules[ENTRY_MODULE] = module
    if bundle is None:
        os.environ.pop(BUNDLE_ENV, None)
    else:
        os.environ[BUNDLE_ENV] = bundle
