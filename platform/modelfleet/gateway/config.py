"""The ``[gateway]`` table of fleet.toml: how the fleet's one OpenAI endpoint behaves.

Read by ``load_gateway_config`` straight from the fleet root's fleet.toml, so the gateway
does not depend on how ``FleetSettings`` is composed (a ``gateway`` field there can hold
this same model). Every value has a default: a fleet.toml without the table gets a
working gateway on the local target.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modelfleet.errors import FleetError

GATEWAY_TABLE = "gateway"
# Modal answers a web request still running at 150 s with a 303 to poll (guide "Request
# timeouts", /work/shared/notes/modal.md): a cold-start hold must end well before that.
MODAL_REQUEST_LIMIT_S = 150
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"


class GatewayConfigError(FleetError):
    """fleet.toml's [gateway] table does not validate; the message names the field and the fix."""


class GatewayConfig(BaseModel):
    """The gateway's settings: where it listens, what names it accepts, its limits and its stores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(default="127.0.0.1", description="Address the local gateway binds (0.0.0.0 on Modal).")
    port: int = Field(default=8780, ge=1024, le=65535, description="The local target's gateway port.")
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description='Extra model names clients may send, mapped to a served name: gpt-4o-mini = "llama-3.1-8b-instruct".',
    )
    max_body_bytes: int = Field(
        default=8 * 2**20, ge=1024, le=256 * 2**20, description="Largest request body accepted (413 above)."
    )
    cold_start_hold_s: float = Field(
        default=120.0,
        ge=0,
        lt=MODAL_REQUEST_LIMIT_S,
        description="How long a request is held while its model boots or restores (503 from upstream) before a 503.",
    )
    upstream_timeout_s: float = Field(
        default=600.0, gt=0, description="Longest silence between two reads from a model before the stream ends."
    )
    key_cache_ttl_s: float = Field(
        default=2.0,
        gt=0,
        le=5.0,
        description="How long a gateway process trusts its copy of the key store; a revoked key is refused after at most this.",
    )
    keys_file: Path = Field(
        default=Path("gateway-keys.json"), description="Local key store (hashes only), relative to the state folder."
    )
    ledger_file: Path = Field(
        default=Path("gateway-usage.sqlite"), description="Local usage ledger, relative to the state folder."
    )
    keys_dict: str = Field(
        default="modelfleet-gateway-keys", pattern=_NAME, description="modal.Dict holding the key hashes on Modal."
    )
    ledger_dict: str = Field(
        default="modelfleet-gateway-usage",
        pattern=_NAME,
        description="modal.Dict holding the usage ledger on Modal (counts per day, key name, model and container).",
    )
    key_store: Literal["auto", "local", "modal"] = Field(
        default="auto",
        description="Where the key hashes live: a 0600 JSON file (local), a modal.Dict (modal), or the target's (auto).",
    )
    rate_limit_storage: str = Field(
        default="async+memory://",
        description="limits storage URI for requests/min and tokens/min; a shared one (async+redis://...) makes every gateway process count together.",
    )
    default_max_tokens: int = Field(
        default=512,
        ge=1,
        le=1_000_000,
        description="Tokens reserved against tokens/min quotas for a request that names no max_tokens.",
    )
    modal_proxy_auth: bool = Field(
        default=False,
        description="Modal target: keep Modal's proxy auth (Modal-Key/Modal-Secret) in front of the gateway as well as its own keys.",
    )
    proxy_token_secret: str = Field(
        default="modelfleet-gateway-proxy-token",
        pattern=_NAME,
        description="Modal target: the Modal Secret with FLEET_PROXY_TOKEN_ID/FLEET_PROXY_TOKEN_SECRET, the proxy token the gateway sends to every model endpoint.",
    )
    ledger_flush_s: float = Field(
        default=1.0, gt=0, le=60, description="How often counted usage is written to the ledger."
    )

    @model_validator(mode="after")
    def _aliases_are_names(self) -> GatewayConfig:
        for alias, target in self.aliases.items():
            if alias == target:
                raise ValueError(f"aliases.{alias}: an alias equal to its target adds nothing; remove it")
            if target in self.aliases:
                raise ValueError(
                    f"aliases.{alias}: points at {target!r}, itself an alias; point it at the served name "
                    f"{self.aliases[target]!r}"
                )
        return self

    def keys_path(self, state_path: Path) -> Path:
        """The local key store's absolute path."""
        return self.keys_file if self.keys_file.is_absolute() else state_path / self.keys_file

    def ledger_path(self, state_path: Path) -> Path:
        """The local ledger's absolute path."""
        return self.ledger_file if self.ledger_file.is_absolute() else state_path / self.ledger_file


def load_gateway_config(fleet_toml: Path) -> GatewayConfig:
    """The ``[gateway]`` table of ``fleet_toml`` (defaults when the table or the file is absent).

    Raises ``GatewayConfigError`` with ``fleet.toml: gateway.<field>: <message>`` on a bad value.
    """
    try:
        data = tomllib.loads(fleet_toml.read_text())
    except FileNotFoundError:
        return GatewayConfig()
    except tomllib.TOMLDecodeError as error:
        raise GatewayConfigError(f"{fleet_toml}: not valid TOML ({error}); fix the file") from None
    table = data.get(GATEWAY_TABLE, {})
    if not isinstance(table, dict):
        raise GatewayConfigError(f"{fleet_toml}: {GATEWAY_TABLE}: must be a table ([gateway]), not a value")
    try:
        return GatewayConfig.model_validate(table)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        field = f"{GATEWAY_TABLE}.{where}" if where else GATEWAY_TABLE
        raise GatewayConfigError(f"{fleet_toml}: {field}: {first['msg']}") from None
