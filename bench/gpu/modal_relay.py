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
network boundary to Modal's servers is stood in for, by ``LoopbackIO``: ``get_data_in``
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
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import uvicorn

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"proxy-connection"}


class LoopbackIO:
    """Stands in for ``ContainerIOManager`` at the network boundary: one HTTP request per function call."""

    def __init__(self) -> None:
        self.calls: dict[str, tuple[Receive, Send]] = {}
        self.get_data_in = _Aio(self._data_in)

    async def _data_in(self, function_call_id: str, attempt_token: str | None) -> AsyncIterator[dict[str, Any]]:
        """The request's messages, as Modal's ``data_in`` stream delivers them; a disconnect ends it."""
        receive = self.calls[function_call_id][0]
        while True:
            message = await receive()
            yield message
            if message["type"] == "http.disconnect":
                return

    async def put_data_out(
        self, function_call_id: str, attempt_token: str, start_index: int, data_format: int, serialized: list[bytes]
    ) -> None:
        """What Modal's front does with a batch of outputs: decode, write to the client's connection."""
        from modal._serialization import deserialize_data_format

        send = self.calls[function_call_id][1]
        for data in serialized:
            message = deserialize_data_format(data, data_format, None)
            if message["type"] == "http.response.start":
                # A proxy drops hop-by-hop headers: the relay's "connection: close" (force_close) is about
                # its own hop to the edge; passed on, it would make the client reconnect for every request.
                message["headers"] = [(k, v) for k, v in message["headers"] if k.lower() not in HOP_BY_HOP]
            await send(message)


class _Aio:
    """``obj.method.aio(...)``, the form Modal's runtime calls its synchronicity-wrapped methods in."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.aio = function


def build_app(upstream_port: int) -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    """The uvicorn-facing ASGI app: every request goes through Modal's wrapper, relay and output sender."""
    from modal._runtime import execution_context
    from modal._runtime.asgi import asgi_app_wrapper, web_server_proxy
    from modal._runtime.container_io_manager import _ContainerIOManager
    from modal_proto import api_pb2

    io = LoopbackIO()
    handler, lifespan = asgi_app_wrapper(web_server_proxy("127.0.0.1", upstream_port), io)
    numbers = itertools.count(1)
    background: list[asyncio.Task[None]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
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
        number = next(numbers)
        call = f"fc-bench-{number}"
        io.calls[call] = (receive, send)
        reset = execution_context._set_current_context_ids([f"in-bench-{number}"], [call], [""])
        # Modal's front builds the scope; the wrapper refuses one that carries lifespan state.
        request_scope = {key: value for key, value in scope.items() if key != "state"}
        queue: asyncio.Queue[Any] = asyncio.Queue(1024)  # as run_input_async makes it
        try:
            # The outputs drain (the sender's sentinel) after the handler closed: the order Modal exits them in.
            async with (
                _ContainerIOManager.generator_output_sender(io, call, "", api_pb2.DATA_FORMAT_ASGI, queue),  # type: ignore[arg-type]
                contextlib.aclosing(handler(request_scope)) as outputs,
            ):
                async for value in outputs:
                    await queue.put(value)
        finally:
            reset()
            del io.calls[call]

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
