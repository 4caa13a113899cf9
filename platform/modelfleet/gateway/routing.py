"""Which model a request's ``model`` names, and which names a key may use.

A name is a served name (a key of the upstream mapping) or an alias from fleet.toml's
``[gateway.aliases]``. A key scoped to some names may use each of them and every other
name of the same served model (``--models gpt-4o-mini`` also allows its target), so a
client that migrates with an alias can switch to the served name without a new key.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelfleet.gateway.keys import KeyRecord
from modelfleet.gateway.upstream import Upstream


class Router:
    """Served names and aliases -> upstreams."""

    def __init__(self, upstreams: Mapping[str, Upstream], aliases: Mapping[str, str]) -> None:
        self.upstreams = dict(upstreams)
        # An alias of a model this gateway does not serve would only produce 502s: left out.
        self.aliases = {alias: target for alias, target in aliases.items() if target in self.upstreams}

    def served_name(self, name: str) -> str | None:
        """The served name ``name`` stands for, or None if it names nothing here."""
        if name in self.upstreams:
            return name
        return self.aliases.get(name)

    def names(self) -> list[str]:
        """Every name a client may send, sorted."""
        return sorted([*self.upstreams, *self.aliases])

    def allowed_served(self, record: KeyRecord) -> set[str]:
        """The served names ``record``'s key may reach."""
        if record.limits.models is None:
            return set(self.upstreams)
        return {served for name in record.limits.models if (served := self.served_name(name)) is not None}

    def allowed_names(self, record: KeyRecord) -> list[str]:
        """Every name (served or alias) ``record``'s key may send, sorted."""
        served = self.allowed_served(record)
        return [name for name in self.names() if self.served_name(name) in served]
