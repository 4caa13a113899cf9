"""``fleet new``: a model folder from a template that validates before it is written.

The template (jinja2) writes a literate model.toml and README: a newcomer edits
numbers next to the prose that explains them.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from modelfleet.catalog import load_catalog
from modelfleet.errors import FleetError
from modelfleet.settings import FleetSettings
from modelfleet.spec.gpus import GPU_MEMORY_GB, KNOWN_GPUS, parse_gpu_ref


class ScaffoldError(FleetError):
    """The requested folder cannot be created; the message says why."""


def scaffold_model(
    settings: FleetSettings,
    *,
    name: str,
    repo: str,
    revision: str,
    gpu: str,
    params_billion: float,
    max_model_len: int,
) -> Path:
    """Render models/NAME/ and return it, or raise with the problems and write nothing."""
    target = settings.root / "models" / name
    if target.exists():
        raise ScaffoldError(f"models/{name} already exists; pick another name or edit it")
    try:
        gpu_type, count = parse_gpu_ref(gpu)
    except ValueError:
        raise ScaffoldError(f"--gpu {gpu!r} is not TYPE or TYPE:COUNT") from None
    if gpu_type not in KNOWN_GPUS:
        raise ScaffoldError(f"--gpu: unknown GPU {gpu_type!r}; known: {', '.join(KNOWN_GPUS)}")
    env = Environment(
        loader=PackageLoader("modelfleet", "templates/model"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    values = {
        "name": name,
        "repo": repo,
        "revision": revision,
        "gpu_type": gpu_type,
        "gpu_count": count,
        "gpu_memory_gb": GPU_MEMORY_GB[gpu_type],
        "params_billion": params_billion,
        "max_model_len": max_model_len,
    }
    with tempfile.TemporaryDirectory() as scratch:
        staged_models = Path(scratch) / "models"
        staged = staged_models / name
        staged.mkdir(parents=True)
        for template in ("model.toml.j2", "README.md.j2"):
            (staged / template.removesuffix(".j2")).write_text(env.get_template(template).render(**values))
        catalog = load_catalog(settings, models_dir=staged_models)
        if catalog.errors:
            lines = "; ".join(f"{p.field}: {p.message}" for p in catalog.errors)
            raise ScaffoldError(f"models/{name} would not validate, nothing written: {lines}")
        shutil.copytree(staged, target)
    return target
