"""Fleet-wide settings: ``fleet.toml`` at the repo root, overridden by ``FLEET_*`` env vars.

Secrets never live here: tokens come from the environment (``MODAL_TOKEN_ID``,
``HF_TOKEN``) or Modal secrets by name.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from modelfleet.errors import FleetError
from modelfleet.gateway.config import GatewayConfig
from modelfleet.spec.defaults import defaults_problems

FLEET_FILE = "fleet.toml"
# The local target's token store, in the state folder (FleetSettings.tokens_path).
TOKENS_FILE = "tokens.json"
# Ports the local target may give one environment's edges, from its local_base_port: the
# span runtime/ports.py's first_free_port searches (tests/unit/test_environments.py checks
# the two agree), so two environments' ranges must not overlap.
LOCAL_PORT_SPAN = 200


class GpuPrices(BaseModel):
    """$/hour per GPU, with where and when the figures were read (prices change)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: str = Field(description="When the prices were read, YYYY-MM-DD.")
    source: str = Field(description="Where they were read.")
    per_hour: dict[str, float] = Field(description="GPU type -> USD per GPU-hour.")


class ComparedApi(BaseModel):
    """The hosted API the fleet replaced (``[compare]``): what its tokens cost, to set beside the fleet's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="The API and model compared with, e.g. 'OpenAI gpt-4o-mini'.")
    input_per_million: float = Field(ge=0, description="USD per 1M input (prompt) tokens.")
    output_per_million: float = Field(ge=0, description="USD per 1M output (generated) tokens.")
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="When the prices were read, YYYY-MM-DD.")
    source: str = Field(min_length=1, description="Where they were read (a pricing page URL).")


class FleetEnvironment(BaseModel):
    """One place the fleet runs (``[environments.<name>]``): its own Modal environment, state and ports.

    On Modal an environment has its own apps, secrets, proxy tokens and state Dict ("Each
    Environment has its own set of Secrets and any object lookups, say for Dicts or Volumes,
    performed from an App in an Environment will by default look for objects in the same
    Environment": modal.com/docs/guide/environments); on the local target it has its own state
    folder and port range, so staging and prod can run side by side on one machine.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    modal_environment: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="The Modal environment its apps, secrets and state live in."
    )
    state_dir: Path = Field(description="Local state folder of this environment (relative to the repo root).")
    local_base_port: int = Field(
        ge=1024,
        le=65535 - LOCAL_PORT_SPAN,
        description=f"First edge port on the local target; the environment uses the {LOCAL_PORT_SPAN} ports from it.",
    )
    promote_from: str | None = Field(
        default=None,
        description="The environment whose passed versions alone may be promoted here (prod: staging); "
        "unset: nothing is promoted into it, it is deployed to directly.",
    )


class FleetTomlError(FleetError):
    """fleet.toml says something no model could use; one ``fleet.toml: field: message`` line per problem."""


def find_fleet_root(start: Path | None = None) -> Path:
    """The repo root: ``FLEET_ROOT`` if set, else the nearest folder up holding ``fleet.toml``."""
    env_root = os.environ.get("FLEET_ROOT")
    if env_root:
        return Path(env_root).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        if (folder / FLEET_FILE).is_file():
            return folder
    raise FileNotFoundError(
        f"no {FLEET_FILE} found in {here} or any parent; run fleet inside the repo or set FLEET_ROOT"
    )


def _given_root(init_settings: PydanticBaseSettingsSource) -> Path | None:
    """The ``root=`` passed to ``FleetSettings(...)``, if any."""
    # pydantic-settings hands the constructor's keyword arguments to the init source
    # (pydantic_settings/sources/base.py, InitSettingsSource.init_kwargs).
    if isinstance(init_settings, InitSettingsSource) and init_settings.init_kwargs.get("root") is not None:
        return Path(init_settings.init_kwargs["root"])
    return None


class FleetSettings(BaseSettings):
    """What is shared by every model in the fleet."""

    model_config = SettingsConfigDict(env_prefix="FLEET_", env_nested_delimiter="__", extra="forbid", frozen=True)

    root: Path = Field(default_factory=lambda: find_fleet_root(), description="Repo root.")
    target: Literal["local", "modal"] = Field(default="local", description="Where the fleet runs.")
    app_prefix: str = Field(default="fleet", pattern=r"^[a-z][a-z0-9-]{0,20}$", description="Modal app name prefix.")
    modal_environment: str = Field(
        default="main", description="Modal environment deployed to (the active environment's, when one is chosen)."
    )
    env: str | None = Field(
        default=None,
        description="The active environment, a key of [environments] (`--env`, FLEET_ENV); its Modal environment, "
        "state folder and ports replace the top-level ones.",
    )
    environments: dict[str, FleetEnvironment] = Field(
        default_factory=dict, description="The fleet's environments by name, e.g. staging and prod."
    )
    weights_environment: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="The Modal environment holding the one weights volume every environment mounts (seeded once); "
        "unset: each environment's own.",
    )
    region: str | None = Field(default=None, description="Default Modal region for every model.")
    deploy_concurrency: int = Field(default=4, ge=1, le=64, description="Models deployed at once.")
    state_dir: Path = Field(default=Path(".fleet"), description="Local state (relative to root).")
    local_base_port: int = Field(default=8800, ge=1024, le=65000, description="First edge port on the local target.")
    local_max_restarts: int = Field(
        default=5, ge=0, le=100, description="Engine crashes the local supervisor restarts before giving up."
    )
    state_dict: str = Field(default="modelfleet-state", description="modal.Dict holding what was deployed.")
    prices: GpuPrices = Field(
        default=GpuPrices(date="unknown", source="unset", per_hour={}), description="GPU price table."
    )
    compare: ComparedApi | None = Field(
        default=None, description="The API the fleet replaced, priced per 1M tokens (`fleet top` shows it)."
    )
    gateway: GatewayConfig = Field(
        default_factory=GatewayConfig,
        description="The fleet's one OpenAI endpoint ([gateway]): port, aliases, limits, key store "
        "(gateway/config.py; the gateway package root imports nothing, so this import is light).",
    )
    defaults: dict[str, Any] = Field(
        default_factory=dict,
        description="model.toml values every model inherits, over the platform's defaults (spec/model.py); "
        "checked when the settings load.",
    )

    @model_validator(mode="after")
    def _defaults_are_inheritable(self) -> FleetSettings:
        # Raised as a FleetError rather than a ValueError: pydantic folds only ValueError and
        # AssertionError (docs.pydantic.dev/latest/concepts/validators, "Raising validation
        # errors") into a ValidationError and lets other exceptions through unchanged, so the
        # message keeps its `fleet.toml: defaults.<field>: ...` shape (tests/unit/test_settings.py
        # checks this against the installed pydantic).
        problems = defaults_problems(self.defaults)
        if problems:
            raise FleetTomlError("\n".join(f"{FLEET_FILE}: defaults.{where}: {message}" for where, message in problems))
        return self

    @model_validator(mode="before")
    @classmethod
    def _active_environment_applied(cls, data: Any) -> Any:
        """The chosen environment's Modal environment, state folder and ports become the settings'.

        Every consumer (deploys, the state store, the local target, reports) reads
        ``modal_environment``, ``state_dir`` and ``local_base_port``; replacing them here makes
        each of them environment-aware without knowing environments exist. Before validation:
        pydantic-settings hands the sources' merged values to one validation, and a frozen
        model cannot be changed after it.
        """
        if not isinstance(data, dict) or not data.get("env"):
            return data
        raw = (data.get("environments") or {}).get(data["env"])
        if raw is None:
            return data  # unknown: _environments_agree names it with the declared ones
        chosen = raw if isinstance(raw, FleetEnvironment) else FleetEnvironment.model_validate(raw)
        return {
            **data,
            "modal_environment": chosen.modal_environment,
            "state_dir": chosen.state_dir,
            "local_base_port": chosen.local_base_port,
        }

    @model_validator(mode="after")
    def _environments_agree(self) -> FleetSettings:
        problems = environment_problems(self.environments, self.env)
        if problems:
            raise FleetTomlError("\n".join(f"{FLEET_FILE}: {where}: {message}" for where, message in problems))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: explicit arguments, then ``FLEET_*`` env, then the root's ``fleet.toml``.

        The file read is the one under the root these settings describe: ``root=`` when given
        (so two fleets can be loaded side by side), else ``FLEET_ROOT`` or the folder found
        from the current directory.
        """
        root = _given_root(init_settings)
        try:
            toml_path = (root if root is not None else find_fleet_root()) / FLEET_FILE
        except FileNotFoundError:
            return (init_settings, env_settings)
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_path))

    @property
    def state_path(self) -> Path:
        """Absolute path of the local state folder."""
        return self.state_dir if self.state_dir.is_absolute() else self.root / self.state_dir

    @property
    def tokens_path(self) -> Path:
        """The local target's hashed token store: ``fleet token``, ``fleet demo`` and every local edge use it."""
        return self.state_path / TOKENS_FILE

    @property
    def environment_label(self) -> str:
        """What every table says it shows: ``staging (Modal environment fleet-staging)``, or the plain one."""
        where = f"Modal environment {self.modal_environment}" if self.target == "modal" else f"state {self.state_dir}"
        return where if self.env is None else f"{self.env} ({where})"

    def for_environment(self, name: str) -> FleetSettings:
        """These settings with ``name`` as the active environment (``fleet promote`` reads two at once)."""
        if name not in self.environments:
            raise FleetTomlError(unknown_environment(name, self.environments))
        return FleetSettings.model_validate({**_explicit(self), "env": name})

    def app_name(self, model: str) -> str:
        """The Modal app name of a model: ``<prefix>-<model>``."""
        return f"{self.app_prefix}-{model}"


def unknown_environment(name: str, environments: dict[str, FleetEnvironment]) -> str:
    """``fleet.toml: env: 'x' is not an environment; declared: ...`` with the way to add one."""
    declared = ", ".join(sorted(environments)) or "none"
    return (
        f"{FLEET_FILE}: env: {name!r} is not an environment; declared: {declared} "
        f"(add [environments.{name}] to {FLEET_FILE}, or pick one with --env / FLEET_ENV)"
    )


def environment_problems(environments: dict[str, FleetEnvironment], env: str | None) -> list[tuple[str, str]]:
    """(where, message) for each way the environments contradict one another or the chosen one is unknown."""
    problems: list[tuple[str, str]] = []
    if env is not None and env not in environments:
        problems.append(("env", unknown_environment(env, environments).split(": ", 2)[2]))
    seen_modal: dict[str, str] = {}
    seen_state: dict[Path, str] = {}
    ordered = sorted(environments.items(), key=lambda item: item[1].local_base_port)
    for (name, chosen), (next_name, following) in itertools.pairwise(ordered):
        if following.local_base_port < chosen.local_base_port + LOCAL_PORT_SPAN:
            problems.append(
                (
                    f"environments.{next_name}.local_base_port",
                    f"{following.local_base_port} is inside {name}'s ports {chosen.local_base_port}.."
                    f"{chosen.local_base_port + LOCAL_PORT_SPAN - 1}; start it at {chosen.local_base_port + LOCAL_PORT_SPAN} "
                    "or later",
                )
            )
    for name, chosen in sorted(environments.items()):
        if chosen.modal_environment in seen_modal:
            problems.append(
                (
                    f"environments.{name}.modal_environment",
                    f"{chosen.modal_environment!r} is {seen_modal[chosen.modal_environment]}'s too; each environment "
                    "needs a Modal environment of its own (its apps, secrets and state)",
                )
            )
        seen_modal.setdefault(chosen.modal_environment, name)
        if chosen.state_dir in seen_state:
            problems.append(
                (
                    f"environments.{name}.state_dir",
                    f"{chosen.state_dir} is {seen_state[chosen.state_dir]}'s too; give each environment its own folder",
                )
            )
        seen_state.setdefault(chosen.state_dir, name)
        if chosen.promote_from is not None and chosen.promote_from not in environments:
            problems.append(
                (
                    f"environments.{name}.promote_from",
                    unknown_environment(chosen.promote_from, environments).split(": ", 2)[2],
                )
            )
        if chosen.promote_from == name:
            problems.append((f"environments.{name}.promote_from", "an environment cannot promote from itself"))
    return problems


def _explicit(settings: FleetSettings) -> dict[str, Any]:
    """The settings as constructor arguments, so a copy keeps what env vars and fleet.toml said."""
    return {name: getattr(settings, name) for name in FleetSettings.model_fields}
