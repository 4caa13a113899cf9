"""A grpclib server that can vanish the way a crashed control plane does.

Why a module of its own: the recorder (``modal_api``) needs it to simulate Modal going away in
the middle of a deploy; it is plumbing, apart from what the fake answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from grpclib.server import Server


class AbortableServer(Server):
    """grpclib ``Server`` that remembers its connections' transports.

    Why: ``Server.close()`` only stops listening and cancels running handlers; established
    HTTP/2 connections stay open, so a client would hang until its 40 s keepalive timeout.
    Aborting the transports makes the server vanish the way a crashed control plane does.
    """

    def __init__(self, handlers: list[Any]) -> None:
        super().__init__(handlers)
        self.transports: list[asyncio.BaseTransport] = []

    def _protocol_factory(self) -> Any:
        protocol = super()._protocol_factory()
        original = protocol.connection_made

        def connection_made(transport: asyncio.BaseTransport) -> None:
            self.transports.append(transport)
            original(transport)

        protocol.connection_made = connection_made  # type: ignore[method-assign]
        return protocol

    def abort(self) -> None:
        """Stop listening and drop every open connection at once."""
        self.close()
        for transport in self.transports:
            transport.abort()  # type: ignore[attr-defined]
