"""Shared by the ModalTarget contract tests: run a target verb in a subprocess against a recorder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from modal_proto import api_pb2

from modelfleet.catalog import load_catalog
from modelfleet.settings import FleetSettings

from .modal_api import ModalApiRecorder

REPO = Path(__file__).resolve().parents[2]  # tests/support/ -> repo root
TIMEOUT_S = 120


def fleet_copy(root: Path, *models: str) -> Path:
    """A fleet a test may change under ``root``: fleet.toml, the volumes and the named model folders."""
    shutil.copy(REPO / "fleet.toml", root / "fleet.toml")
    shutil.copytree(REPO / "volumes", root / "volumes")
    for model in models:
        shutil.copytree(REPO / "models" / model, root / "models" / model)
    return root


def fleet_env(api: ModalApiRecorder, root: Path = REPO, **extra: str) -> dict[str, str]:
    """The recorder's client settings plus a modal-target fleet rooted at ``root``."""
    env = api.subprocess_env()
    for key in [k for k in env if k.startswith("FLEET_")]:
        del env[key]
    env.update({"FLEET_TARGET": "modal", "FLEET_ROOT": str(root), **extra})
    return env


def run_fleet(
    api: ModalApiRecorder, *args: str, root: Path = REPO, timeout: float = TIMEOUT_S, **extra: str
) -> subprocess.CompletedProcess[str]:
    """The real ``fleet`` CLI as CI runs it (``CI=1``, not at a terminal), pointed at the recorder."""
    return subprocess.run(
        [sys.executable, "-m", "modelfleet", *args],
        env={**fleet_env(api, root, **extra), "CI": "1"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_driver(
    api: ModalApiRecorder, *args: str, root: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m tests.support.modal_api_driver ARGS`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "tests.support.modal_api_driver", *args],
        env=env or fleet_env(api, root),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def drive(api: ModalApiRecorder, *args: str, root: Path = REPO) -> Any:
    """Run a verb that must succeed; its JSON result."""
    done = run_driver(api, *args, root=root)
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def create_workspace(api: ModalApiRecorder, root: Path = REPO, *, skip_secrets: tuple[str, ...] = ()) -> None:
    """Create what a real Modal workspace holds before a fleet deploy: every declared volume
    (volumes/*.toml) and every Secret the models name, with the keys the fleet reads.

    The recorder is strict like Modal, so a deploy without these fails; ``skip_secrets``
    leaves some out to test exactly that. Placeholder values only: no real token exists here.
    """
    catalog = load_catalog(FleetSettings(root=root))
    for volume in catalog.volumes.values():
        api.create_volume(volume.name)
    secrets: dict[str, dict[str, str]] = {}
    for model in catalog.models.values():
        token_secret = getattr(model.spec.weights, "token_secret", None)
        if token_secret:
            # The seed container reads the hub token as HF_TOKEN (modelfleet/volumes/hf_source.py).
            secrets.setdefault(token_secret, {})["HF_TOKEN"] = "hf_placeholder"
        for name in model.spec.secrets:
            secrets.setdefault(name, {"PLACEHOLDER": "1"})
    # The gateway app calls the models with the proxy token of this Secret (targets/modal/gateway_entry.py).
    settings = FleetSettings(root=root)
    secrets[settings.gateway.proxy_token_secret] = {
        "FLEET_PROXY_TOKEN_ID": "wk-placeholder",
        "FLEET_PROXY_TOKEN_SECRET": "ws-placeholder",
    }
    for name, values in secrets.items():
        if name not in skip_secrets:
            api.create_secret(name, values)


def app_definitions(api: ModalApiRecorder, app_id: str) -> dict[str, Any]:
    """Function name -> definition (FunctionData or Function) of one app's FunctionCreate requests."""
    return {
        api.function_definition(req).function_name: api.function_definition(req)
        for req in api.function_creates()
        if req.app_id == app_id
    }


def ranked_functions(definition: Any) -> list[Any]:
    """The per-GPU Function entries of a definition, by rank (one when there is no fallback)."""
    if isinstance(definition, api_pb2.FunctionData):
        return [r.function for r in sorted(definition.ranked_functions, key=lambda r: r.rank)]
    return [definition]
