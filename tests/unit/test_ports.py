"""The one free-port helper: any port, or the first free one of the local target's range."""

from __future__ import annotations

import socket

import pytest

from modelfleet.errors import FleetError
from modelfleet.runtime.ports import first_free_port, free_port, port_is_free


def test_a_free_port_can_be_bound() -> None:
    port = free_port()
    assert port_is_free(port)


def test_the_first_free_port_skips_bound_and_promised_ones() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        start = busy.getsockname()[1]
        chosen = first_free_port(start, {start + 1}, span=50)
    assert chosen not in (start, start + 1) and start < chosen < start + 50


def test_an_exhausted_range_is_a_user_error_naming_the_setting() -> None:
    # A FleetError, so the CLI prints one line; it was a bare OSError, which is now a traceback.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        with pytest.raises(FleetError, match=rf"local_base_port: no free port in {port}..{port}; set it"):
            first_free_port(port, set(), span=1)
