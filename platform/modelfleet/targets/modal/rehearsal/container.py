"""The rehearsed container's process: Modal's own runtime functions drive the app module's hooks.

Run as ``python -m modelfleet.targets.modal.rehearsal.container`` in the environment
``plan.container_env`` builds. What Modal's container entrypoint does
(``modal/_container_entrypoint.py``, modal 1.6.4), and what this does instead:

- ``hydrate_function``: ``import_class_service`` for a class, ``import_server_service``
  for an ``@app.server`` (``user_code_imports``) -- called here as they are, with the
  ``api_pb2.Function`` fields they read (module, implementation name, is_class/is_server,
  is_checkpointing_function) built from the app module itself instead of the server's
  ``ContainerArguments``; the object hydration that follows needs the control plane and
  is skipped: the paths rehearsed on CPU (memory-only snapshot, none) call no Modal
  object; the GPU path's ``Volume.commit`` of the compile cache would need a hydrated
  volume (and that path cannot run on CPU anyway);
- ``run_function`` / ``run_server``: ``service.function_execution_context`` (classes:
  enter(snap=True) hooks, ``maybe_snapshot``, enter(snap=False) hooks, the web method
  called and its port awaited on eth0 by ``construct_webhook_callable``, lifespans) or
  ``service.lifecycle_context`` (servers), the very context managers Modal uses, so the
  order is Modal's. Their task lifecycle manager is ``RehearsalLifecycle`` below: the
  snapshot point is announced and the container "restores" with a new task id, as
  ``memory_restore`` does; a hook's exception ends the rehearsal (Modal reports it as a
  task failure);
- serving: a class's port is awaited by Modal's code above, and its requests go through
  Modal's relay (``asgi_app_wrapper`` + ``web_server_proxy``, the callable Modal
  finalized) on the hooks' own loop, fed from a loopback port that stands in for
  Modal's input plane (``relay.py``); a server's port (which Modal's proxy forwards to,
  with no runtime relay) is awaited with ``asgi.wait_for_web_server`` on eth0 and
  requests go straight to it.

Progress goes to stdout as ``@rehearsal {json}`` lines (``driver`` reads them).
SIGTERM stops serving: Modal's context managers then run the exit hooks.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import modal
from modal._partial_function import _find_partial_methods_for_user_cls, _PartialFunctionFlags
from modal._runtime import asgi
from modal._runtime.user_code_event_loop import UserCodeEventLoop
from modal._runtime.user_code_imports import Service, import_class_service, import_server_service
from modal._utils.async_utils import synchronizer
from modal_proto import api_pb2

from modelfleet.runtime.command import free_port
from modelfleet.targets.modal.bundle import load_bundle
from modelfleet.targets.modal.rehearsal.plan import PROGRESS_MARK, RESTORED_TASK_ID
from modelfleet.targets.modal.rehearsal.relay import RehearsalIO, input_plane, serve_inputs

ENTRY_MODULE = "modelfleet.targets.modal.entry"
# Modal waits for a web server's port on the container's eth0 address (user_code_imports.py).
INTERFACE = b"eth0"


def emit(stage: str, **fields: object) -> None:
    """One progress line for the driver."""
    print(PROGRESS_MARK + json.dumps({"stage": stage, **fields}), flush=True)


class RehearsalLifecycle:
    """What Modal's ``TaskLifecycleManager`` does for the hooks, without the control plane.

    Modal's code calls ``handle_task_lifecycle_exception`` around each group of hooks
    (enter(snap=True), enter(snap=False), web method, exit), ``memory_snapshot`` at the
    snapshot point and ``volume_commit`` at the end; each is timed and reported here.
    """

    def __init__(self, phases: list[str]) -> None:
        self.phases = phases
        self.snapshotted = False

    @contextmanager
    def handle_task_lifecycle_exception(self) -> Iterator[None]:
        label = self.phases.pop(0) if self.phases else "lifecycle"
        started = time.monotonic()
        emit("begin", phase=label)
        yield
        emit("end", phase=label, seconds=round(time.monotonic() - started, 2))

    def memory_snapshot(self) -> None:
        """The snapshot point: Modal checkpoints the process here; a restore continues with a new task id."""
        emit("snapshot", task_id=os.environ.get("MODAL_TASK_ID"), restored_task_id=RESTORED_TASK_ID)
        # memory_restore: the restore state's task_id becomes MODAL_TASK_ID (config._env_var_name).
        os.environ["MODAL_TASK_ID"] = RESTORED_TASK_ID
        self.snapshotted = True

    def volume_commit(self, volume_ids: list[str]) -> None:
        """Modal commits volumes with background commits on; the definition here names none."""
        emit("volume_commit", volumes=len(volume_ids))


def find_service(module: Any) -> tuple[str, Any]:
    """The module's one serving object (a ``modal.Cls`` or a ``modal.Server``) and its global name."""
    found = [(name, value) for name, value in vars(module).items() if isinstance(value, (modal.Cls, modal.Server))]
    if len(found) != 1:
        names = ", ".join(name for name, _ in found) or "none"
        raise SystemExit(f"{module.__name__}: expected one modal class or server, found {names}")
    return found[0]


def container_function_def(module_name: str, name: str, obj: Any, checkpointing: bool) -> api_pb2.Function:
    """The ``api_pb2.Function`` fields Modal's import functions and lifecycle read."""
    is_server = isinstance(obj, modal.Server)
    # Class service functions are named "Cls.*", servers "Name" (user_code_imports._get_cls_or_user_cls).
    qualname = name if is_server else f"{name}.*"
    return api_pb2.Function(
        module_name=module_name,
        function_name=qualname,
        implementation_name=qualname,
        is_class=not is_server,
        is_server=is_server,
        is_checkpointing_function=checkpointing,
    )


def hook_names(user_cls: type) -> dict[str, list[str]]:
    """The hooks Modal will run, found by Modal's own decorator metadata."""
    flags = {
        "enter(snap=True)": _PartialFunctionFlags.ENTER_PRE_SNAPSHOT,
        "enter(snap=False)": _PartialFunctionFlags.ENTER_POST_SNAPSHOT,
        "exit": _PartialFunctionFlags.EXIT,
        "web": _PartialFunctionFlags.WEB_INTERFACE,
    }
    return {label: sorted(_find_partial_methods_for_user_cls(user_cls, flag)) for label, flag in flags.items()}


def definition_info(obj: Any) -> Any:
    """The service function's ``FunctionInfo``, as the local definition holds it (no network)."""
    translated = synchronizer._translate_in(obj)  # type: ignore[no-untyped-call]
    if isinstance(obj, modal.Server):
        return translated._get_service_function()._function_info
    return translated._get_class_service_function()._function_info


def server_port(obj: Any) -> tuple[int, float]:
    """An ``@app.server``'s declared port and startup timeout, from the definition's info."""
    info = definition_info(obj)
    inner = info._inner_server_info if info is not None else None
    if inner is None:
        raise SystemExit("the server's definition carries no port (modal.Server without server info)")
    return int(inner.port), float(inner.startup_timeout)


def web_method(service: Any) -> tuple[str, int]:
    """A class's ``@modal.web_server`` method and its port, from the method's webhook config."""
    for name, partial in service._partial_functions.items():
        config = partial.params.webhook_config
        if config is not None and config.type == api_pb2.WEBHOOK_TYPE_WEB_SERVER:
            return name, int(config.web_server_port)
    raise SystemExit("the class has no @modal.web_server method to serve")


def ensure_port_free(port: int) -> None:
    """Refuse to start when something else listens on the declared port: the wait would find it, not us."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: a closed connection's TIME_WAIT is no listener.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            raise SystemExit(
                f"port {port} is in use on this machine; the rehearsed container serves on the port its "
                "definition declares: stop what listens there (another rehearsal?) and run again"
            ) from None


def serve_until_stopped(port: int, stop: threading.Event) -> None:
    emit("ready", port=port, via="server port", boot_task_id=os.environ.get("MODAL_TASK_ID"))
    while not stop.wait(0.5):
        pass
    emit("stopping")


def main(entry_module: str = ENTRY_MODULE, checkpointing: bool | None = None) -> int:
    """Run the container of ``entry_module``; ``checkpointing`` defaults to the bundle's snapshot.enabled.

    Both parameters exist for the test of the ``@app.server`` path, which runs a small app of its own.
    """
    started = time.monotonic()
    module = importlib.import_module(entry_module)
    emit("import", module=entry_module, seconds=round(time.monotonic() - started, 2))
    name, obj = find_service(module)
    if checkpointing is None:
        # What the serving class passes as enable_memory_snapshot (app.serving_options), read
        # the way the app module reads it: the image's bundle.
        checkpointing = bool(load_bundle().spec.snapshot.enabled)
    function_def = container_function_def(entry_module, name, obj, checkpointing)
    service: Service
    if function_def.is_server:
        service = import_server_service(function_def, api_pb2.Object(), None, None)  # type: ignore[arg-type]
    else:
        service = import_class_service(function_def, api_pb2.Object(), "cs-rehearsal", None, None, (), {})  # type: ignore[arg-type]
    hooks = hook_names(type(service.user_cls_instance))
    emit("hooks", service=name, kind="server" if function_def.is_server else "class", **hooks)
    info = definition_info(obj)
    emit("volumes", mounts=sorted(info.volumes) if info is not None else [])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lifecycle = RehearsalLifecycle(["enter(snap=True)", "enter(snap=False)"])
    with UserCodeEventLoop() as event_loop:
        if function_def.is_server:
            run_server(service, obj, event_loop, lifecycle, stop)
        else:
            run_class(service, event_loop, lifecycle, stop)
    emit("done", snapshotted=lifecycle.snapshotted, seconds=round(time.monotonic() - started, 2))
    return 0


def run_server(
    service: Service, obj: Any, event_loop: UserCodeEventLoop, lifecycle: RehearsalLifecycle, stop: threading.Event
) -> None:
    """``_container_entrypoint.run_server``'s context; the port is awaited where Modal's proxy would connect."""
    port, timeout = server_port(obj)
    ensure_port_free(port)
    with service.lifecycle_context(event_loop, lifecycle):  # type: ignore[arg-type]
        waited = time.monotonic()
        emit("begin", phase="server port")
        asgi.wait_for_web_server(asgi.get_ip_address(INTERFACE), port, timeout=timeout)
        emit("end", phase="server port", seconds=round(time.monotonic() - waited, 2))
        lifecycle.phases[:] = ["exit"]
        serve_until_stopped(port, stop)


def run_class(
    service: Service, event_loop: UserCodeEventLoop, lifecycle: RehearsalLifecycle, stop: threading.Event
) -> None:
    """``_container_entrypoint.run_function``'s context: the web method, its port and the relay are Modal's code."""
    method, web_server_port = web_method(service)
    ensure_port_free(web_server_port)
    # construct_webhook_callable calls the web method and waits for its port; then
    # lifecycle_asgi starts the relay's lifespan (and shuts it down before the exit hooks).
    lifecycle.phases += ["web method + port", "lifespan startup"]
    io = RehearsalIO(lifecycle)
    with service.function_execution_context(event_loop, io) as finalized:  # type: ignore[arg-type]
        lifecycle.phases[:] = ["lifespan shutdown", "exit"]
        # Requests enter through Modal's relay (asgi_app_wrapper + web_server_proxy) on the hooks'
        # own loop, as on Modal; the loopback port stands in for Modal's input plane.
        port = free_port()

        def ready() -> None:
            emit(
                "ready",
                port=port,
                via="modal relay",
                web_server_port=web_server_port,
                boot_task_id=os.environ.get("MODAL_TASK_ID"),
            )

        plane = input_plane(finalized[method].callable, io)
        event_loop.run(serve_inputs(plane, port, stop, ready))  # type: ignore[no-untyped-call]
        emit("stopping")


if __name__ == "__main__":
    sys.exit(main())
