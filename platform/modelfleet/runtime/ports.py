"""Finding a loopback port to listen on: the one place the platform and its tests ask the kernel.

Two needs: any free port (vLLM's internal socket behind the edge, a test server), and
the first free port of a configured range (the local target's edges, which a person
reads and remembers, so they start at ``local_base_port``).
"""

from __future__ import annotations

import socket

from modelfleet.errors import FleetError

LOOPBACK = "127.0.0.1"


class NoFreePortError(FleetError):
    """Every port of the configured range is taken."""


def free_port(host: str = LOOPBACK) -> int:
    """A port on ``host`` that nobody listens on now, picked by the kernel."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether ``host:port`` can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def first_free_port(start: int, taken: set[int], *, span: int = 200) -> int:
    """The first port from ``start`` that is neither bound nor promised to another model."""
    for port in range(start, start + span):
        if port not in taken and port_is_free(port):
            return port
    raise NoFreePortError(
        f"fleet.toml: local_base_port: no free port in {start}..{start + span - 1}; set it to another range"
    )
