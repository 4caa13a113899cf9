"""The container rehearsal: one model's Modal container lifecycle, run here as Modal's runtime runs it.

Why: the contract tests prove the client accepts a definition, and the hook bodies are
unit-tested, but only a container shows that the hooks Modal finds, in the order Modal
runs them, in the environment the image declares, bring up an endpoint that serves.
``fleet rehearse MODEL`` (and the e2e fixture) does that on this machine with real
vLLM on CPU:

- ``plan``: the bundle the image carries, its volumes mapped to local folders, the
  image's environment; where CPU vLLM cannot run the declared snapshot path (a GPU
  snapshot sleeps vLLM, which needs CUDA) the memory-only path runs, and the plan says so;
- ``container``: a fresh process imports ``modelfleet.targets.modal.entry`` and hands
  it to Modal's own runtime functions (``import_class_service`` /
  ``import_server_service``, ``Service.function_execution_context`` /
  ``lifecycle_context``), which find the hooks by Modal's decorator metadata and run
  enter(snap=True), the snapshot point, enter(snap=False), the web method or server;
- ``relay``: a classic web server's requests go through Modal's relay code
  (``asgi_app_wrapper`` + ``web_server_proxy``) in that process, fed from a loopback
  port standing in for Modal's input plane; a Modal Server's port is reached directly;
- ``driver``: starts that process, reports each stage with its seconds, waits for the
  port, stops it (SIGTERM: Modal's exit hooks run).

Why not Modal's own entrypoint (``modal._container_entrypoint``, checked in modal
1.6.4): it needs ``ContainerArguments`` (``MODAL_CONTAINER_ARGUMENTS_PATH``: the
server-built ``function_def``, ``app_layout`` with function/class ids and hydration
metadata for every object, ``checkpoint_id``), a client authenticated as a task
(``Client.from_env`` in a container), and these RPCs of the control plane:
``ContainerHello``, ``ContainerHeartbeat`` (a loop), ``FunctionGetInputs`` /
``FunctionPutOutputs`` / ``FunctionCallPutDataOut`` (every HTTP request of a classic
web server is an ASGI input fed through them to ``web_server_proxy``),
``FunctionGetDynamicConcurrency``, ``ContainerCheckpoint`` (then ``memory_restore``
busy-waits for ``/__modal/restore-state.json``), ``VolumeCommit``, ``TaskResult``,
``ContainerStop``; for an ``@app.server`` (``run_server``: no inputs, no heartbeats)
``_FlashContainerEntry.enter`` calls ``experimental.flash_server.server_forward`` right
after the enter(snap=False) hooks, which sends ``ContainerServerLifecycleReady`` -- the
worker, not the container, then waits for the port (Modal's own example starts the
server with ``Popen`` and returns). In a container ``Client.from_env`` connects as
``CLIENT_TYPE_CONTAINER`` with no token. The loopback API
(``tests/support/modal_api.py``) answers none of these, and the front would have to
become Modal's input plane; so the rehearsal stops one layer below: the same
functions ``run_function`` / ``run_server`` call, with the control-plane pieces
replaced: the task lifecycle manager by ``container.RehearsalLifecycle``, the IO
manager (a call's data in and out) by ``relay.RehearsalIO``.
"""

from modelfleet.targets.modal.rehearsal.driver import RehearsedContainer
from modelfleet.targets.modal.rehearsal.plan import RehearsalError, RehearsalPlan, plan_rehearsal

__all__ = ["RehearsalError", "RehearsalPlan", "RehearsedContainer", "plan_rehearsal"]
