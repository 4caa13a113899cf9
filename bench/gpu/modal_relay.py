"""Modal's own ``@web_server`` relay path, run as its own process in front of the edge.

On Modal, a classic ``@modal.web_server`` function is served by the container's Python
runtime with Modal's code (modal==1.6.4):

- ``_runtime/user_code_imports.py``: ``asgi_app_wrapper(asgi.web_server_proxy(host, port), io)``;
- ``_runtime/asgi.py``: ``web_server_proxy`` relays each request to the port with aiohttp
  (``force_close=True``: a new TCP connection per request) and passes every chunk of the
  answer on (``iter_any()``); ``asgi_app_wrapper`` feeds it the request from the input's
  ``data_in`` stream and turns every ASGI message it sends into a generator output;
- ``_container_entrypoint.py`` + ``_runtime/container_io_manager.py``:
  ``generator_output_sender`` serialises each output (``DATA_FORMAT_ASGI`` protobuf) and
  sends batches of them with ``put_data_out`` (a gRPC call to Modal).

This process runs exactly those functions from the installed modal package. Only the
network boundary to Modal's servers is stood in for, by the container rehearsal's
``RehearsalIO`` (``modelfleet.targets.modal.rehearsal.relay``; this file held its first copy): ``get_data_in``
yields the HTTP request uvicorn received, and ``put_data_out`` decodes the serialised
outputs and writes them to the client, as Modal's front would on its side. What is left
out -- the gRPC calls themselves (grpclib + h2 in Python), Modal's input polling -- only
adds cost in a real container, so the figure measured here is a lower bound of the
classic path's cost. The loop is plain asyncio, as in Modal's runtime (it names no uvloop).

Why not serve ``web_server_proxy`` alone with uvicorn: its ``listen_for_disconnect`` loops on
``receive()``, and uvicorn answers every ``receive()`` after the response with
``http.disconnect`` at once, so the first finished request spins the event loop forever.
Modal's ``asgi_app_wrapper`` hands it a queue's ``get`` instead, which blocks.

Usage: ``python -m bench.gpu.modal_relay --upstream-port 8000 --port 8002``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

from modelfleet.targets.modal.rehearsal.relay import Receive, RehearsalIO, Send, input_plane


def build_app(upstream_port: int) -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    """The uvicorn-facing ASGI app: every request goes through Modal's wrapper, relay and output sender.

    The per-request part is the container rehearsal's ``input_plane`` (the same stand-in for
    Modal's input plane, one function call per request); this process adds the lifespan
    uvicorn drives, which the rehearsal gets from Modal's own runtime.
    """
    from modal._runtime.asgi import asgi_app_wrapper, web_server_proxy

    io = RehearsalIO(lifecycle=None)
    handler, lifespan = asgi_app_wrapper(web_server_proxy("127.0.0.1", upstream_port), io)  # type: ignore[arg-type]
    per_request = input_plane(handler, io)
    background: list[asyncio.Task[None]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await per_request(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                background.append(asyncio.create_task(lifespan.background_task()))  # type: ignore[no-untyped-call]
                await lifespan.lifespan_startup()  # type: ignore[no-untyped-call]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                with contextlib.suppress(Exception):
                    await lifespan.lifespan_shutdown()  # type: ignore[no-untyped-call]
                await send({"type": "lifespan.shutdown.complete"})
                return

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve Modal's relay path to the edge on 127.0.0.1:port until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream-port", type=int, required=True, help="the edge's port")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        build_app(args.upstream_port),
        host="127.0.0.1",
        port=args.port,
        lifespan="on",
        loop="asyncio",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
