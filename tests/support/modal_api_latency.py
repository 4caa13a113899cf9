"""How long the loopback Modal API takes to answer each RPC: off by default, a profile for benchmarks.

Why: the recorder answers in microseconds, so a benchmark of ``fleet deploy-all`` against it
measures only client CPU -- on a 2-core machine, process start-up -- while against Modal a
deploy mostly waits on the control plane (image resolution, function creation, publishing).
A profile gives each RPC the wait a real call has, so concurrency is measured as it behaves
against Modal. Tests never set one: latency is zero unless a profile is passed.

The figures live in ``modal_api_latency.toml`` (beside this file) with their sources; a
profile file of the same form can replace it (``LatencyProfile.from_file``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

DEFAULT_PROFILE = Path(__file__).with_name("modal_api_latency.toml")


class LatencyProfileError(ValueError):
    """A profile file that cannot be used; the message names the file, the field and the fix."""


@dataclass(frozen=True)
class LatencyProfile:
    """Seconds the recorder waits before answering an RPC: ``per_rpc[name]``, else ``default``.

    The wait runs on the server's event loop (``asyncio.sleep``), so calls in flight at the same
    time wait side by side, as they do against a remote control plane.
    """

    default: float = 0.0
    per_rpc: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    source: str = "none: the recorder answers at once"

    def delay(self, rpc: str) -> float:
        """The wait for one call of ``rpc`` (e.g. ``"FunctionCreate"``)."""
        return self.per_rpc.get(rpc, self.default)

    @property
    def enabled(self) -> bool:
        """Whether any RPC waits at all."""
        return self.default > 0 or any(v > 0 for v in self.per_rpc.values())

    @classmethod
    def from_file(cls, path: Path = DEFAULT_PROFILE, *, known_rpcs: frozenset[str] | None = None) -> LatencyProfile:
        """Read a profile: ``default_seconds``, ``[rpc_seconds]`` (RPC name -> seconds), ``source``.

        ``known_rpcs`` (the API's RPC names) makes a misspelt RPC an error instead of a
        figure that silently never applies.
        """
        try:
            data: dict[str, Any] = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise LatencyProfileError(f"{path}: cannot read the latency profile ({error})") from None
        unknown = set(data) - {"default_seconds", "rpc_seconds", "source"}
        if unknown:
            raise LatencyProfileError(
                f"{path}: unknown keys {sorted(unknown)}; use default_seconds, rpc_seconds, source"
            )
        default = _seconds(path, "default_seconds", data.get("default_seconds", 0.0))
        table = data.get("rpc_seconds", {})
        if not isinstance(table, dict):
            raise LatencyProfileError(f"{path}: rpc_seconds: must be a table of RPC name = seconds")
        per_rpc = {name: _seconds(path, f"rpc_seconds.{name}", value) for name, value in table.items()}
        if known_rpcs is not None:
            misspelt = sorted(set(per_rpc) - known_rpcs)
            if misspelt:
                raise LatencyProfileError(
                    f"{path}: rpc_seconds: {misspelt} are not RPCs of Modal's API; names are as in "
                    "modal_proto/api.proto (e.g. FunctionCreate)"
                )
        return cls(default=default, per_rpc=MappingProxyType(per_rpc), source=str(data.get("source", path.name)))

    def describe(self) -> dict[str, Any]:
        """The profile as plain data, for a benchmark's result file."""
        return {"default_seconds": self.default, "rpc_seconds": dict(self.per_rpc), "source": self.source}


def _seconds(path: Path, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 600:
        raise LatencyProfileError(f"{path}: {name}: {value!r} is not a number of seconds between 0 and 600")
    return float(value)


NO_LATENCY = LatencyProfile()
