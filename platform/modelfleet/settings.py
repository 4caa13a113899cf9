"""Fleet-wide settings: ``fleet.toml`` at the repo root, overridden by ``FLEET_*`` env vars.

Secrets never live here: tokens come from the environment (``MODAL_TOKEN_ID``,
``HF_TOKEN``) or Modal secrets by name.
"""

from __future__ import annotations

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
from modelfleet.spec.defaults import defaults_problems

FLEET_FILE = "fleet.toml"
# The local target's token store, in the state folder (FleetSettings.tokens_path).
TOKENS_FILE = "tokens.json"


class GpuPrices(BaseModel):
    """$/hour per GPU, with where and when the figures were read (prices change)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: str = Field(description="When the prices were read, YYYY-MM-DD.")
    source: str = Field(description="Where they were read.")
    per_hour: dict[str, float] = Field(description="GPU type -> USD per GPU-hour.")


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
    modal_environment: str = Field(default="main", description="Modal environment deployed to.")
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

    def app_name(self, model: str) -> str:
        """The Modal app name of a model: ``<prefix>-<model>``."""
        return f"{self.app_prefix}-{model}"
