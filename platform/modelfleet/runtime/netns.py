"""A network namespace with loopback only, for an engine that must not reach any network.

Linux gives a process a network of its own with ``unshare(CLONE_NEWNET)``: the new
namespace has one interface, ``lo``, down, and no route anywhere. The engine's guardian
calls ``isolate_network`` in the forked child before it executes (``guardian.spawn``), so
the guardian, vLLM and every process vLLM forks live in it; the edge, outside, reaches
vLLM through its Unix socket (``vllm serve --uds``), which is a file, not a network.

``unshare`` needs CAP_SYS_ADMIN (root here and in CI). Python 3.11 has no
``os.unshare`` / ``os.setns`` (added in 3.12), so both are libc calls through ctypes.

``probe_egress`` proves the isolation from inside: the owner opens listeners in its own
namespace (``EgressListeners``: on 127.0.0.1 and on each of this machine's own interface
addresses, each answering a nonce), a probe process joins the engine's namespace
(``setns``) and tries each; a listener whose nonce comes back was reached. No address
outside this machine is ever contacted.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import secrets
import socket
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psutil

CLONE_NEWNET = 0x40000000
# <linux/sockios.h> and <net/if.h>: read and write an interface's flags.
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
PROBE_TIMEOUT = 2.0
NONCE_BYTES = 16


class NamespaceError(OSError):
    """A namespace call failed; the message names the call and the reason."""


def _libc_call(name: str, *args: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        code = ctypes.get_errno()
        raise NamespaceError(code, f"{name}(CLONE_NEWNET): {os.strerror(code)}")


def bring_loopback_up() -> None:
    """Set ``lo`` up in the current namespace (a new one starts with it down): SIOCSIFFLAGS."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request + b"\0" * 14)[:18])[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP) + b"\0" * 14)


def isolate_network() -> None:
    """Move the calling process into a new network namespace with only ``lo``, up.

    Meant for a forked child before exec (``preexec_fn``): what it then runs, and every
    process that forks, has loopback and nothing else.
    """
    _libc_call("unshare", CLONE_NEWNET)
    bring_loopback_up()


def namespace_refusal() -> str | None:
    """Why this machine refuses a network namespace to this process, or None when it grants one.

    Tried for real in a forked child that only calls ``isolate_network`` and exits with the
    errno, since only the kernel knows: a user without CAP_SYS_ADMIN, a container's seccomp
    profile or a kernel without namespaces all refuse the same call.
    """
    pid = os.fork()
    if pid == 0:  # the child: try, report through the exit code, never return into the caller's code
        try:
            isolate_network()
        except OSError as error:
            os._exit(error.errno or 1)
        except BaseException:
            os._exit(255)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return None
    reason = os.strerror(code) if 0 < code < 255 else f"exit code {code}"
    return f"unshare(CLONE_NEWNET) refused: {reason}"


def namespace_id(pid: int) -> str:
    """The network namespace a process is in (``net:[4026531840]``); equal ids, same network."""
    return os.readlink(f"/proc/{pid}/ns/net")


@dataclass
class EgressListeners:
    """TCP listeners in this (the host's) namespace, one per local address, each sending ``nonce``.

    The addresses are this machine's own: 127.0.0.1 and every IPv4 address of its
    interfaces (psutil.net_if_addrs). From inside an isolated namespace none of them may
    answer with the nonce: loopback there is the namespace's own, and the interface
    addresses have no route.
    """

    nonce: bytes = field(default_factory=lambda: secrets.token_bytes(NONCE_BYTES))
    sockets: list[socket.socket] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where the listeners are: (host, port) each."""
        return [sock.getsockname()[:2] for sock in self.sockets]

    def __enter__(self) -> EgressListeners:
        for host in _local_ipv4_addresses():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sock.listen(8)
            sock.settimeout(0.2)
            self.sockets.append(sock)
            threading.Thread(target=self._answer, args=(sock,), daemon=True, name=f"egress-listener-{host}").start()
        return self

    def _answer(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.sendall(self.nonce)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        for sock in self.sockets:
            sock.close()


def _local_ipv4_addresses() -> list[str]:
    addresses = ["127.0.0.1"]
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family == socket.AF_INET and entry.address not in addresses:
                addresses.append(entry.address)
    return addresses


@dataclass(frozen=True)
class ProbeResult:
    """What a probe inside a namespace met at each address: "reached", or why not."""

    namespace: str
    outcomes: dict[str, str]

    @property
    def isolated(self) -> bool:
        """True when no listener was reached."""
        return bool(self.outcomes) and "reached" not in self.outcomes.values()

    def summary(self) -> str:
        """One line: each address and what the probe met there."""
        return "; ".join(f"{address}: {outcome}" for address, outcome in self.outcomes.items())


def probe_egress(pid: int, listeners: EgressListeners) -> ProbeResult:
    """From inside ``pid``'s network namespace, try every listener; what each attempt met.

    The probe is a child process that joins the namespace with ``setns`` before it
    executes (the namespace is the one the engine serves in, read from /proc while it
    runs) and then connects; it knows each listener's address and nonce only.
    """
    targets = [f"{host}:{port}" for host, port in listeners.addresses]
    namespace_file = f"/proc/{pid}/ns/net"

    def enter() -> None:
        with open(namespace_file) as handle:
            _libc_call("setns", handle.fileno(), CLONE_NEWNET)

    done = subprocess.run(
        [sys.executable, "-m", "modelfleet.runtime.netns", listeners.nonce.hex(), *targets],
        preexec_fn=enter,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": _package_root()},
        check=True,
    )
    outcomes: dict[str, str] = json.loads(done.stdout)
    return ProbeResult(namespace=namespace_id(pid), outcomes=outcomes)


def _package_root() -> str:
    root = str(Path(__file__).resolve().parents[2])
    current = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join([root, *(p for p in current.split(os.pathsep) if p)])


def attempt(host: str, port: int, nonce: bytes) -> str:
    """Connect to ``host:port`` and read; "reached" only when the answer is ``nonce``."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT) as sock:
            answer = sock.recv(len(nonce))
    except OSError as error:
        if error.errno is not None:
            return f"{errno.errorcode.get(error.errno, error.errno)} ({os.strerror(error.errno)})"
        return f"{error.__class__.__name__}"
    return "reached" if answer == nonce else "another listener answered (not the fleet's)"


def _main(argv: list[str]) -> int:
    """``python -m modelfleet.runtime.netns NONCE_HEX HOST:PORT...``: print each attempt's outcome as JSON."""
    nonce = bytes.fromhex(argv[0])
    outcomes = {}
    for target in argv[1:]:
        host, _, port = target.rpartition(":")
        outcomes[target] = attempt(host, int(port), nonce)
    print(json.dumps(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
