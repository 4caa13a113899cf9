"""Find and load every model folder (and declared volume) into validated specs.

A broken folder never hides the others: every problem in every file is collected
into one report, each as ``file: field: message``.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from modelfleet.errors import FleetError
from modelfleet.settings import FleetSettings
from modelfleet.spec.errors import describe_errors
from modelfleet.spec.golden import GOLDEN_FILE, GoldenSpec, cross_check
from modelfleet.spec.lints import Finding, lint
from modelfleet.spec.model import ModelSpec
from modelfleet.spec.volume import VolumeSpec

MODEL_FILE = "model.toml"
_APP_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
MAX_APP_NAME = 64


class UnknownModelError(FleetError, KeyError):
    """No valid model by that name: unknown, or its folder does not validate.

    A ``KeyError`` too, so callers that looked names up in a dict before keep working; its
    ``str`` is the plain message (``KeyError`` would quote it).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file, phrased for the person who must fix it."""

    file: Path
    field: str
    message: str
    level: Literal["error", "warning"] = "error"

    def render(self, root: Path) -> str:
        """``models/x/model.toml: gpu.type: message``, relative to the repo root."""
        try:
            shown = self.file.relative_to(root)
        except ValueError:
            shown = self.file
        return f"{shown}: {self.field}: {self.message}"


@dataclass(frozen=True)
class CatalogModel:
    """A model folder that validated: its name (the folder), its file and its spec."""

    name: str
    folder: Path
    spec: ModelSpec
    findings: tuple[Finding, ...] = ()
    # The folder's golden.toml: what the deploy must answer (None: the folder has none).
    golden: GoldenSpec | None = None

    @property
    def file(self) -> Path:
        """The model's model.toml."""
        return self.folder / MODEL_FILE

    @property
    def served_name(self) -> str:
        """The name clients pass as ``model``."""
        return self.spec.weights.served_model_name or self.name

    def spec_hash(self) -> str:
        """A short stable hash of the effective spec: what ``plan`` compares."""
        canonical = json.dumps(self.spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class Catalog:
    """Every model and volume of the fleet, plus everything wrong with them."""

    root: Path
    models: dict[str, CatalogModel] = field(default_factory=dict)
    volumes: dict[str, VolumeSpec] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """Problems that block validate and deploy."""
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Problems printed but not blocking."""
        return [p for p in self.problems if p.level == "warning"]

    def require(self, name: str) -> CatalogModel:
        """A model by folder name; every lookup by name goes through here.

        An unknown name raises ``UnknownModelError`` listing the known names; a folder that
        exists but does not validate raises the same error quoting its first problem, so the
        user sees why the model is missing rather than that it is.
        """
        if name in self.models:
            return self.models[name]
        broken = [p for p in self.errors if p.file.parent.name == name]
        if broken:
            raise UnknownModelError(f"model {name!r} does not validate: {broken[0].render(self.root)}")
        known = ", ".join(sorted(self.models)) or "none"
        raise UnknownModelError(f"no valid model named {name!r} (known: {known})")


def load_catalog(settings: FleetSettings, models_dir: Path | None = None) -> Catalog:
    """Load every ``models/*/model.toml`` and ``volumes/*.toml`` under the fleet root."""
    root = settings.root
    catalog = Catalog(root=root)
    folder = models_dir or root / "models"
    for model_dir in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
        _load_model(catalog, model_dir, settings)
    _check_served_names(catalog)
    for volume_file in sorted((root / "volumes").glob("*.toml")):
        _load_volume(catalog, volume_file)
    return catalog


def _load_model(catalog: Catalog, model_dir: Path, settings: FleetSettings) -> None:
    file = model_dir / MODEL_FILE
    name = model_dir.name
    if not file.is_file():
        catalog.problems.append(Problem(file, "(file)", f"missing; every folder under models/ needs a {MODEL_FILE}"))
        return
    if not _APP_NAME.match(name) or len(settings.app_name(name)) > MAX_APP_NAME:
        catalog.problems.append(
            Problem(
                file,
                "(folder name)",
                f"{name!r} is not a valid app name: use lowercase letters, digits and hyphens, "
                f"at most {MAX_APP_NAME - len(settings.app_prefix) - 1} characters",
            )
        )
        return
    data = _read_toml(catalog, file)
    if data is None:
        return
    merged = deep_merge(settings.defaults, data)
    if settings.region and "region" not in merged:
        merged["region"] = settings.region
    try:
        spec = ModelSpec.model_validate(merged)
    except ValidationError as error:
        for where, message in describe_errors(error, ModelSpec):
            catalog.problems.append(Problem(file, where, message))
        return
    findings = tuple(lint(spec, settings.prices.per_hour))
    for finding in findings:
        catalog.problems.append(Problem(file, finding.field, finding.message, finding.level))
    if any(f.level == "error" for f in findings):
        return
    golden_file = model_dir / GOLDEN_FILE
    golden = _load_golden(catalog, golden_file) if golden_file.is_file() else None
    if golden_file.is_file() and golden is None:
        return
    catalog.models[name] = CatalogModel(name=name, folder=model_dir, spec=spec, findings=findings, golden=golden)


def _load_golden(catalog: Catalog, file: Path) -> GoldenSpec | None:
    """The folder's golden.toml, validated like model.toml; None (with its problems recorded) when broken."""
    data = _read_toml(catalog, file)
    if data is None:
        return None
    try:
        golden = GoldenSpec.model_validate(data)
    except ValidationError as error:
        for where, message in describe_errors(error, GoldenSpec):
            catalog.problems.append(Problem(file, where, message))
        return None
    problems = cross_check(golden)
    if golden.eval is not None and not (file.parent / golden.eval.task_file).is_file():
        problems.append(("eval.task_file", f"{golden.eval.task_file!r} is not a file in {file.parent.name}/"))
    for where, message in problems:
        catalog.problems.append(Problem(file, where, message))
    return None if problems else golden


def _read_toml(catalog: Catalog, file: Path) -> dict[str, Any] | None:
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        catalog.problems.append(Problem(file, "(syntax)", f"not valid TOML: {error}"))
    except UnicodeDecodeError:
        catalog.problems.append(Problem(file, "(file)", "is not UTF-8 text; save it as UTF-8"))
    except OSError as error:
        catalog.problems.append(Problem(file, "(file)", f"cannot be read: {error.strerror}"))
    return None


def _check_served_names(catalog: Catalog) -> None:
    seen: dict[str, str] = {}
    for name, model in sorted(catalog.models.items()):
        served = model.served_name
        if served in seen:
            catalog.problems.append(
                Problem(
                    model.file,
                    "weights.served_model_name",
                    f"served name {served!r} is already used by models/{seen[served]}; served names must be unique",
                )
            )
        else:
            seen[served] = name
    for problem in catalog.problems:
        if problem.field == "weights.served_model_name" and problem.level == "error":
            catalog.models.pop(problem.file.parent.name, None)


def _load_volume(catalog: Catalog, file: Path) -> None:
    data = _read_toml(catalog, file)
    if data is None:
        return
    try:
        volume = VolumeSpec.model_validate(data)
    except ValidationError as error:
        for where, message in describe_errors(error, VolumeSpec):
            catalog.problems.append(Problem(file, where, message))
        return
    catalog.volumes[file.stem] = volume


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``, merging nested tables (a model overrides only what differs)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
