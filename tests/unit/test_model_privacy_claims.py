"""Each example model's README says what its ``[privacy]`` gets, and only that.

The default is ``egress = "blocked"``; a README that claims blocked egress for a model
that allows it (or says nothing for one that blocks it) misleads the reviewer the folder
is written for (STYLE.md, "A model folder reads like one of Modal's examples").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfleet.catalog import load_catalog
from modelfleet.settings import FleetSettings
from tests.unit.conftest import REPO_ROOT

FOLDERS = sorted(p.parent for p in (REPO_ROOT / "models").glob("*/model.toml"))


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_the_readme_states_the_egress_the_model_gets(folder: Path) -> None:
    spec = load_catalog(FleetSettings(root=REPO_ROOT)).require(folder.name).spec
    readme = " ".join((folder / "README.md").read_text().split())
    where = f"{folder.relative_to(REPO_ROOT)}/README.md"
    if spec.privacy.egress == "blocked":
        assert "**Egress blocked**" in readme, f"{where}: say that egress is blocked (the model's privacy.egress)"
        assert "block_network=True" in readme, f"{where}: say what Modal enforces (block_network=True)"
        if spec.local.enabled:
            assert "egress: blocked (verified)" in readme, f"{where}: say what `fleet status` shows locally"
    else:
        assert "**Egress blocked**" not in readme, f"{where}: the model allows egress; do not claim it is blocked"
