"""A classic ``@modal.web_server``'s requests, served through Modal's own relay code in the rehearsed container.

On Modal a request to a classic web server does not reach its port directly: it becomes
an input whose ASGI messages the container's runtime feeds to
``asgi_app_wrapper(web_server_proxy(eth0, port))`` (modal 1.6.4
``_runtime/user_code_imports.py`` ``construct_webhook_callable``), in the very process
and event loop that ran the hooks; ``web_server_proxy`` relays it with aiohttp (a new
connection per request) and ``generator_output_sender`` ships every ASGI message back
(``_runtime/container_io_manager.py``). The rehearsal runs those functions -- the
callable ``function_execution_context`` finalized, on ``UserCodeEventLoop``'s loop --
and stands in only for the network boundary, Modal's input plane: a loopback HTTP
port whose every request is one function call (``RehearsalIO.get_data_in`` hands the
wrapper the request, ``put_data_out`` writes the outputs to the client). The H200
benchmark of this path (``bench/gpu/modal_relay.py``) serves the same stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from modal._runtime import execution_context
from modal._runtime.container_io_manager import _ContainerIOManager
from modal._serialization import deserialize_data_format
from modal_proto import api_pb2

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
# A proxy drops hop-by-hop headers: the relay's "connection: close" (force_close) is its own hop's.
HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"proxy-connection"}


class _Aio:
    """``obj.method.aio(...)``, the form Modal's runtime calls its synchronicity-wrapped methods in."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.aio = function


class RehearsalIO:
    """What Modal's runtime asks of its ``ContainerIOManager`` here: the lifecycle manager, snapshot
    context, breakpoint hook (``function_execution_context``), and a call's data in and out
    (``asgi_app_wrapper``, ``generator_output_sender``)."""

    def __init__(self, lifecycle: Any) -> None:
        self.lifecycle = lifecycle
        self.calls: dict[str, tuple[Receive, Send]] = {}
        self.get_data_in = _Aio(self._data_in)

    def get_task_lifecycle_manager(self) -> Any:
        return self.lifecycle

    @contextmanager
    def snapshot_context_manager(self) -> Iterator[None]:
        yield

    def _install_breakpoint_hook(self) -> None:
        pass

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
        """What Modal's front does with a batch of outputs: decode them and write them to the client."""
        send = self.calls[function_call_id][1]
        for data in serialized:
            message = deserialize_data_format(data, data_format, None)
            if message["type"] == "http.response.start":
                message["headers"] = [(k, v) for k, v in message["headers"] if k.lower() not in HOP_BY_HOP]
            await send(message)


def input_plane(handler: Callable[[dict[str, Any]], AsyncIterator[Any]], io: RehearsalIO) -> Any:
    """The ASGI app of the loopback port: each request is one function call through ``handler``."""
    numbers = itertools.count(1)

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        number = next(numbers)
        call = f"fc-rehearsal-{number}"
        io.calls[call] = (receive, send)
        reset = execution_context._set_current_context_ids([f"in-rehearsal-{number}"], [call], [""])
        # Modal's front builds the scope; the wrapper refuses one that carries lifespan state.
        request_scope = {key: value for key, value in scope.items() if key != "state"}
        queue: asyncio.Queue[Any] = asyncio.Queue(1024)  # as run_input_async makes it
        try:
            async with (
                _ContainerIOManager.generator_output_sender(io, call, "", api_pb2.DATA_FORMAT_ASGI, queue),  # type: ignore[arg-type]
                contextlib.aclosing(handler(request_scope)) as outputs,  # type: ignore[type-var]
            ):
                async for value in outputs:
                    await queue.put(value)
        finally:
            reset()
            del io.calls[call]

    return app


class _QuietServer(uvicorn.Server):
    """uvicorn without its own SIGTERM/SIGINT handlers: the container's handler decides when serving ends."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_inputs(app: Any, port: int, stop: threading.Event, on_ready: Callable[[], None]) -> None:
    """Serve ``app`` on 127.0.0.1:``port`` in the running loop until ``stop`` is set."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", access_log=False)
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # raises why it could not start
            return
        await asyncio.sleep(0.05)
    on_ready()
    while not stop.is_set() and not task.done():
        await asyncio.sleep(0.2)
    server.should_exit = True
    await task
