"""Every model folder under models/ is held to the same shape, including folders added later.

model.toml starts with the ``#:schema`` line (editors autocomplete and check the file against
the JSON Schema ``fleet schema`` writes), and README.md ends as Modal's examples do: how to call
the model (an ``openai`` snippet with its served name), its cold start, and its idle floor as
``fleet cost`` prices it. The folders are found at collection time, so a new one is checked
without editing this file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelfleet.catalog import Catalog, load_catalog
from modelfleet.settings import FleetSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"
MODEL_FOLDERS = sorted(path.parent for path in MODELS_DIR.glob("*/model.toml"))
# Where `fleet schema` writes the schema (modelfleet's SCHEMA_PATH, relative to the repo root).
SCHEMA_FILE = MODELS_DIR / "model.schema.json"
SCHEMA_PREFIX = "#:schema "
ENDING_SECTIONS = ("Call it", "Cold start", "Idle floor")
FENCE = "```"


def _sections(markdown: str) -> list[tuple[str, str]]:
    """The ``## `` sections of a README as (heading, body), ignoring lines inside code fences."""
    sections: list[tuple[str, list[str]]] = []
    in_fence = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(FENCE):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif sections:
            sections[-1][1].append(line)
    return [(heading, "\n".join(body)) for heading, body in sections]


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.DOTALL | re.MULTILINE)


@pytest.fixture(scope="module")
def fleet() -> tuple[FleetSettings, Catalog]:
    """This repository's settings and catalog, read from its own fleet.toml whatever the cwd is."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("FLEET_ROOT", "FLEET_TARGET", "FLEET_APP_PREFIX"):
            patch.delenv(name, raising=False)
        settings = FleetSettings(root=REPO_ROOT)
        return settings, load_catalog(settings)


def test_the_example_folders_are_found() -> None:
    assert len(MODEL_FOLDERS) >= 4, f"{MODELS_DIR}: expected the example model folders, found {MODEL_FOLDERS}"


@pytest.mark.parametrize("folder", MODEL_FOLDERS, ids=lambda folder: folder.name)
def test_model_toml_starts_with_the_schema_line(folder: Path) -> None:
    first_line = (folder / "model.toml").read_text().splitlines()[0]
    where = f"{folder.relative_to(REPO_ROOT)}/model.toml: line 1"
    assert first_line.startswith(SCHEMA_PREFIX), (
        f"{where}: is {first_line!r}; start the file with '{SCHEMA_PREFIX}../model.schema.json'"
    )
    target = (folder / first_line.removeprefix(SCHEMA_PREFIX).strip()).resolve()
    assert target == SCHEMA_FILE.resolve(), f"{where}: points at {target}, not the schema `fleet schema` writes"
    assert target.is_file(), f"{where}: {target} does not exist: run `fleet schema`"


@pytest.mark.parametrize("folder", MODEL_FOLDERS, ids=lambda folder: folder.name)
def test_readme_ends_with_call_cold_start_and_idle_floor(folder: Path) -> None:
    readme = (folder / "README.md").read_text()
    headings = [heading for heading, _ in _sections(readme)]
    assert tuple(headings[-3:]) == ENDING_SECTIONS, (
        f"{folder.relative_to(REPO_ROOT)}/README.md: ends with sections {headings[-3:]}; "
        f"end it with ## {', ## '.join(ENDING_SECTIONS)}"
    )


@pytest.mark.parametrize("folder", MODEL_FOLDERS, ids=lambda folder: folder.name)
def test_readme_call_snippet_uses_the_served_name(folder: Path, fleet: tuple[FleetSettings, Catalog]) -> None:
    _, catalog = fleet
    served_name = catalog.require(folder.name).served_name
    call = dict(_sections((folder / "README.md").read_text())).get("Call it", "")
    snippets = [code for code in _python_blocks(call) if "from openai import OpenAI" in code]
    where = f"{folder.relative_to(REPO_ROOT)}/README.md: ## Call it"
    assert snippets, f"{where}: has no ```python block using `from openai import OpenAI`"
    for needed in (f'model="{served_name}"', "base_url=", "api_key="):
        assert any(needed in code for code in snippets), f"{where}: the openai snippet lacks {needed}"


@pytest.mark.parametrize("folder", MODEL_FOLDERS, ids=lambda folder: folder.name)
def test_readme_idle_floor_quotes_fleet_cost(folder: Path, fleet: tuple[FleetSettings, Catalog]) -> None:
    settings, catalog = fleet
    spec = catalog.require(folder.name).spec
    # The floor `fleet cost` prints: min_containers containers of the first GPU choice, at list price.
    floor = spec.scaling.min_containers * spec.gpu.count * settings.prices.per_hour.get(spec.gpu.type, 0.0)
    idle = dict(_sections((folder / "README.md").read_text())).get("Idle floor", "")
    where = f"{folder.relative_to(REPO_ROOT)}/README.md: ## Idle floor"
    assert "fleet cost" in idle, f"{where}: say that the figure is `fleet cost`'s"
    assert settings.prices.date in idle, (
        f"{where}: quote the price table's date {settings.prices.date} (fleet.toml [prices]); "
        "re-run `fleet cost` and update the figures"
    )
    quoted = re.search(r"floor[^$]*\$([\d,]+\.\d\d)/h", idle)
    assert quoted and quoted.group(1) == f"{floor:,.2f}", (
        f"{where}: `fleet cost` gives a floor of ${floor:,.2f}/h; quote it as 'floor $X/h' "
        f"(found {quoted.group(0) if quoted else 'no floor figure'})"
    )
