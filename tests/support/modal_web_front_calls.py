"""The loopback web front's records: its settings, endpoints, held calls, live versions and boots.

Why separate: ``modal_web_front`` (the front) and the fronts built on it
(``modal_web_front_external``) share these plain records; the front keeps the behaviour.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from .modal_web_front_defs import Served

MODAL_REQUEST_LIMIT = 150.0


@dataclass(frozen=True)
class FrontSettings:
    """How the front behaves; tests scale Modal's times down."""

    upstream_url: str
    request_limit: float = MODAL_REQUEST_LIMIT
    boot_seconds: float = 0.0
    restore_seconds: float = 0.0
    snapshot_after: int = 1


@dataclass(frozen=True)
class Endpoint:
    """One deployed web endpoint's URL on the front."""

    app_name: str
    label: str
    url: str


@dataclass
class HeldCall:
    """One request's result as it arrives: status, headers, body chunks; served to the first and later polls."""

    call_id: str
    started: asyncio.Event = field(default_factory=asyncio.Event)
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    done: bool = False
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class Live:
    """What the live version of an endpoint's app is: which app and version, and how it is served."""

    app_id: str
    version: int
    served: Served

    @property
    def requires_auth(self) -> bool:
        return self.served.requires_auth

    @property
    def snapshots(self) -> bool:
        return self.served.snapshots


@dataclass(frozen=True)
class Boot:
    """A container the front started, for tests to read."""

    app_name: str
    version: int
    kind: str


async def chunks(call: HeldCall) -> AsyncIterator[bytes]:
    """Every body chunk of the call, from the first, waiting for more until it is done."""
    for index in itertools.count():
        async with call.changed:
            await call.changed.wait_for(lambda i=index: len(call.chunks) > i or call.done)  # type: ignore[misc]
            if len(call.chunks) <= index:
                return
            chunk = call.chunks[index]
        yield chunk
