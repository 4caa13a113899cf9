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
    return build_module_app(ENTRY_MODULE, BUNDLE_ENV, bundle.to_env())


def build_module_app(module_name: str, env_name: str, env_value: str) -> modal.App:
    """Execute ``module_name`` afresh with ``env_name=env_value`` and return the ``modal.App`` it declares.

    The model apps (``build_app``) and the gateway app (``gateway_deploy.build_gateway_app``)
    are both built this way: the module reads its bundle from the environment, as it does
    in the container, and must be the module of that name while it runs.
    """
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.loader is None:
        raise AppBuildError(f"ModuleNotFoundError: No module named {module_name!r}")
    with _BUILD_LOCK:
        saved_module = sys.modules.get(module_name)
        saved_env = os.environ.get(env_name)
        module: ModuleType = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        os.environ[env_name] = env_value
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            raise AppBuildError(f"{type(error).__name__}: {error}") from error
        finally:
            _restore(module_name, saved_module, env_name, saved_env)
    app = getattr(module, "app", None)
    if not isinstance(app, modal.App):
        raise AppBuildError(f"{module_name} declares no modal.App named `app`")
    return app


def _restore(module_name: str, module: ModuleType | None, env_name: str, value: str | None) -> None:
    """Put back whatever this process had before the build (usually: no such module, no such variable)."""
    if module is None:
        sys.modules.pop(module_name, None)
    else:
        sys.modules[module_name] = module
    if value is None:
        os.environ.pop(env_name, None)
    else:
        os.environ[env_name] = value
