"""Which models a set of commits touched: the merge pipeline deploys only those.

A model is its folder, so a change under ``models/<name>/`` concerns that model alone;
the platform code, the fleet-wide defaults and the declared volumes go into every
app, so a change there concerns every model. Git is asked (through ``modelfleet.gitinfo``),
never the file times: the answer must be the same on a laptop and on a fresh CI checkout. Used by the CI matrix
(``fleet ci matrix``) and by ``fleet deploy-all --changed-since``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from modelfleet.catalog import MODEL_FILE, Catalog
from modelfleet.gitinfo import name_status, untracked_paths, verify_ref

# Paths (relative to the fleet root) whose change reaches every model's app: the
# package baked into each image, the defaults every model.toml inherits, the volumes.
PLATFORM_PATHS: tuple[str, ...] = ("platform/", "pyproject.toml", "fleet.toml", "volumes/")
MODELS_DIR = "models/"


@dataclass(frozen=True)
class ChangeSet:
    """What changed between a base ref and now, per model folder.

    ``added``/``changed``/``removed`` are folder names as git sees them; ``affected``
    is what a deploy must act on: the valid catalog models the change reaches (every
    one of them when the platform changed). ``broken`` are added or changed folders
    that the catalog could not load, so they cannot be deployed.
    """

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    platform_changed: bool = False
    affected: list[str] = field(default_factory=list)
    platform_files: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)


def detect_changes(repo_root: Path, base_ref: str, catalog: Catalog, *, head: str | None = None) -> ChangeSet:
    """The models changed between ``base_ref`` and ``head`` (a ref, or the working tree when None).

    The working tree includes untracked files, so a model folder created but not yet
    committed counts as added.
    """
    verify_ref(repo_root, base_ref)
    if head is not None:
        verify_ref(repo_root, head)
    statuses = name_status(repo_root, base_ref, head)
    if head is None:
        for path in untracked_paths(repo_root):
            statuses.setdefault(path, "A")
    return classify(statuses, catalog)


def classify(statuses: dict[str, str], catalog: Catalog) -> ChangeSet:
    """Turn ``{path: git status letter}`` into a ChangeSet against the catalog."""
    platform_files = sorted(p for p in statuses if _is_platform(p))
    folders: dict[str, str] = {}
    for path, status in statuses.items():
        name = _model_folder(path)
        if name is None:
            continue
        # The model.toml's own fate decides added/removed; any other file makes it "changed".
        if path == f"{MODELS_DIR}{name}/{MODEL_FILE}" and status in ("A", "D"):
            folders[name] = "added" if status == "A" else "removed"
        else:
            folders.setdefault(name, "changed")
    added = sorted(n for n, kind in folders.items() if kind == "added")
    changed = sorted(n for n, kind in folders.items() if kind == "changed")
    removed = sorted(n for n, kind in folders.items() if kind == "removed")
    if platform_files:
        affected = sorted(catalog.models)
    else:
        affected = sorted(n for n in (*added, *changed) if n in catalog.models)
    broken = sorted(n for n in (*added, *changed) if n not in catalog.models and _folder_exists(catalog, n))
    return ChangeSet(
        added=added,
        changed=changed,
        removed=removed,
        platform_changed=bool(platform_files),
        affected=affected,
        platform_files=platform_files,
        broken=broken,
    )


def _is_platform(path: str) -> bool:
    return any(path.startswith(prefix) if prefix.endswith("/") else path == prefix for prefix in PLATFORM_PATHS)


def _model_folder(path: str) -> str | None:
    """``models/<name>/...`` -> name; files directly under models/ (the JSON schema) belong to no model."""
    if not path.startswith(MODELS_DIR):
        return None
    parts = path[len(MODELS_DIR) :].split("/")
    return parts[0] if len(parts) > 1 and parts[0] else None


def _folder_exists(catalog: Catalog, name: str) -> bool:
    return (catalog.root / "models" / name).is_dir()
