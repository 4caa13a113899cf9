"""Which Modal primitive serves a model: a Modal Server (``@app.server``) or the classic web endpoint.

The two differ in how a request reaches the container (checked against modal 1.6.4 and
Modal's docs and examples, 2026-12):

- **Server** (``@app.server``, public since modal 1.5.1; guide
  https://modal.com/docs/guide/servers): Modal's proxy forwards the request to the
  container's port; no Python in the container touches it. After the
  ``enter(snap=False)`` hooks the container tells Modal it is ready
  (``modal/experimental/flash_server.py``: ``ContainerServerLifecycleReady``) and then
  only waits for SIGTERM (``_container_entrypoint.py``, ``call_server``). Concurrency is
  ``target_concurrency`` / ``max_concurrency`` ("Requests above this limit receive a 429
  response": ``App.server`` docstring); ``exit_grace_period`` (<= 3600 s) lets in-flight
  requests finish on shutdown; proxy auth is on unless ``unauthenticated=True``; memory
  and GPU snapshots work: ``enable_memory_snapshot`` and ``experimental_options`` are
  ``App.server`` parameters, the ``snap=True`` hooks are allowed when memory snapshots
  are on (``_Server._validate_wrapped_user_cls_decorators``), the guide says Servers
  "benefit from the same snappy cold boot performance (including memory snapshots)",
  and Modal's vLLM example on ``@app.server`` takes a GPU snapshot of a sleeping vLLM
  (modal-examples ``vllm_low_latency.py``). It takes no ``block_network`` and no
  per-request ``timeout`` (the edge bounds each request: ``scaling.timeout``).
  **While no container of it runs, Modal answers 503 instead of holding the request**:
  "When a Modal HTTP Server has scaled to zero, clients will get a 503 Service
  Unavailable error response from Modal. Those requests still trigger the underlying
  Modal Cls to scale up" (modal-examples ``07_web_endpoints/http_server.py``) and, for
  ``@app.server`` itself, "when no replicas are available, Modal will respond with the
  503 Service Unavailable status" (modal-examples
  ``06_gpu_and_ml/llm-serving/vllm_low_latency.py``, which retries 503 in its client).
- **Classic web endpoint** (``@app.cls`` + ``@modal.web_server``): each request becomes
  a Modal input, queued while a container boots and served after the boot (a request
  still waiting at 150 s gets a 303 to poll; guide "Request timeouts"); the container's
  runtime relays it to the port with aiohttp (``_runtime/asgi.py``, ``web_server_proxy``).
  On the H200 that relay in front of the edge measured 1.006 and 1.010 of direct vLLM at
  concurrency 64 (bench/README.md, GPU section, "gpu-servers-run1/2"): no measurable cost.

The rule, from the spec alone:

- ``privacy.egress = "blocked"`` (the default) -> classic web endpoint with
  ``block_network=True`` (Servers cannot block egress: ``App.server`` has no
  ``block_network`` or ``restrict_modal_access``, modal 1.6.4 app.py), whatever
  ``min_containers`` says; a warm blocked model is told so by ``fleet validate``.
  Whether inbound web traffic still reaches a ``web_server`` with ``block_network=True``
  is not documented by Modal: Modal's runtime relays each request from inside the
  container to the port on the container's eth0 address (``_runtime/user_code_imports.py``),
  which is not outbound traffic, but only ``fleet smoke`` after a deploy shows it works.
- ``egress = "allowed"`` and ``scaling.min_containers >= 1`` -> Server: a container always runs, so no request
  meets the 503 of an empty Server except in the gaps Modal itself causes (a preempted
  or crashed container being replaced).
- otherwise (scale to zero, the fleet default) -> classic web endpoint: a request that
  arrives while no container runs must still be served after the boot, and only the
  classic endpoint holds it. A client (or the openai SDK, which retries a 503 twice
  within seconds) would otherwise see 503s for the whole cold start.

Either way the edge runs as its own process (``runtime/edge_main.py`` under
``runtime/guardian.py``) bound to ``0.0.0.0:EDGE_PORT``; it is started after the engine
serves, so its ``/health`` never answers 200 before vLLM does.
"""

from __future__ import annotations

from typing import Literal

from modelfleet.spec.model import ModelSpec

Primitive = Literal["server", "web_server"]


def serving_primitive(spec: ModelSpec) -> Primitive:
    """The primitive that serves ``spec`` (see the module docstring for why)."""
    if spec.privacy.egress == "blocked":
        return "web_server"
    if spec.scaling.min_containers >= 1:
        return "server"
    return "web_server"


def primitive_reason(spec: ModelSpec) -> str:
    """One line saying which primitive serves the model and which field decided it."""
    if spec.privacy.egress == "blocked":
        if spec.scaling.min_containers >= 1:
            return (
                "classic web endpoint with block_network: privacy.egress = 'blocked' needs it, and Servers lack it "
                f"(min_containers = {spec.scaling.min_containers} alone would choose a Server)"
            )
        return (
            "classic web endpoint with block_network: min_containers = 0 (a Server answers 503 while no container "
            "runs) and privacy.egress = 'blocked' (Servers cannot block egress)"
        )
    if spec.scaling.min_containers >= 1:
        return (
            f"Modal Server: min_containers = {spec.scaling.min_containers} keeps a container running, "
            "so requests go straight to its port"
        )
    return (
        "classic web endpoint: min_containers = 0, and a Modal Server answers 503 while no container runs; "
        "the web endpoint holds the request through the cold start"
    )
