"""Which models a deploy pipeline run deploys, as the JSON a GitHub job matrix takes.

The merge pipeline deploys what the pushed commits changed; when there is no usable
base commit (a branch's first push sends forty zeros, a force push leaves the old
commit out of the clone) it deploys every model: deploying too much costs minutes,
deploying too little leaves production behind the code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelfleet.catalog import Catalog
from modelfleet.changes import ChangeSet, detect_changes
from modelfleet.gitinfo import is_null_ref, ref_exists


@dataclass(frozen=True)
class Selection:
    """The models to deploy and, for the job log, why these."""

    models: list[str]
    reason: str
    changes: ChangeSet | None = None

    def matrix(self) -> dict[str, Any]:
        """``{"include": [{"model": name}, ...]}``: one matrix job per model, named after it."""
        return {"include": [{"model": name} for name in self.models]}

    def matrix_json(self) -> str:
        """The matrix on one line (a GitHub output value must not span lines)."""
        return json.dumps(self.matrix(), separators=(",", ":"))

    def github_output(self) -> str:
        """Lines for ``$GITHUB_OUTPUT``; ``any`` guards the matrix job, since GitHub rejects an empty matrix."""
        return f"matrix={self.matrix_json()}\nany={'true' if self.models else 'false'}\n"


def select_all(catalog: Catalog) -> Selection:
    """Every model the catalog could load."""
    return Selection(sorted(catalog.models), "every model")


def select_named(catalog: Catalog, names: list[str]) -> Selection:
    """Exactly the named models; an unknown or broken one is the catalog's ``UnknownModelError``."""
    chosen = sorted({catalog.require(name).name for name in names})
    return Selection(chosen, "chosen: " + ", ".join(chosen))


def select_changed(repo_root: Path, catalog: Catalog, base_ref: str) -> Selection:
    """The models the commits from ``base_ref`` to HEAD reach, or every model without a usable base."""
    if is_null_ref(base_ref):
        return Selection(sorted(catalog.models), "no base commit (first push of the branch): every model")
    if not ref_exists(repo_root, base_ref):
        return Selection(sorted(catalog.models), f"base {base_ref} is not in this clone (force push?): every model")
    changes = detect_changes(repo_root, base_ref, catalog, head="HEAD")
    return Selection(changes.affected, _explain(base_ref, changes), changes)


def _explain(base_ref: str, changes: ChangeSet) -> str:
    if changes.platform_changed:
        shown = ", ".join(changes.platform_files[:3]) + (" ..." if len(changes.platform_files) > 3 else "")
        return f"platform changed since {base_ref[:12]} ({shown}): every model"
    parts = [
        f"{label}: {', '.join(names)}"
        for label, names in (("added", changes.added), ("changed", changes.changed), ("removed", changes.removed))
        if names
    ]
    return f"since {base_ref[:12]}: " + ("; ".join(parts) if parts else "no model changed")
