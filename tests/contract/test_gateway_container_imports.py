"""What the gateway's Modal container imports is what its image installs (its own list, not the model image's).

The gateway app (``targets/modal/gateway_entry.py``) runs in ``debian_slim`` with
``GATEWAY_PACKAGES`` and the modal client Modal adds: no vLLM, so nothing comes with it.
The module is imported as Modal's runtime imports it (a fresh interpreter, a bundle in
the environment) beside the gateway's stores and /metrics; every third-party package the
modelfleet modules it loaded import when loaded must come from a pinned distribution, or one
a pinned distribution or the modal client requires (their declared requirements, as pip
resolves them). Not ``test_container_imports``'s walk through imports inside functions too:
the app module sits in ``targets.modal``, whose package reaches the whole platform through
functions the gateway never calls.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from modelfleet.gateway.config import GatewayConfig
from modelfleet.targets.modal.gateway_bundle import GATEWAY_BUNDLE_ENV, GatewayBundle, ModelEndpoint
from tests.contract.test_container_imports import (
    PLATFORM,
    _module_file,
    canonical,
    distributions_of,
    pinned_distributions,
)

GATEWAY_ENTRY = PLATFORM / "modelfleet" / "targets" / "modal" / "gateway_entry.py"


def gateway_packages() -> tuple[str, ...]:
    """``GATEWAY_PACKAGES`` read from the module's source: importing it needs a deploy's bundle."""
    for node in ast.parse(GATEWAY_ENTRY.read_text()).body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None):
            continue
        if node.target.id == "GATEWAY_PACKAGES":
            return tuple(ast.literal_eval(node.value))
    raise AssertionError(f"{GATEWAY_ENTRY}: no GATEWAY_PACKAGES tuple")


def installed_with(roots: set[str]) -> set[str]:
    """``roots`` and every distribution they require, transitively (this environment's metadata; extras left out)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            if re.search(r"extra\s*==", line):
                continue
            found = re.match(r"[A-Za-z0-9][\w.-]*", line)
            if found:
                todo.append(canonical(found.group(0)))
    return seen


LOADED = """
import json, sys
import modelfleet.targets.modal.gateway_entry  # what Modal's runtime imports in the container
import modelfleet.gateway.fleet_metrics, modelfleet.gateway.key_stores, modelfleet.gateway.modal_ledger
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "modelfleet")))
"""


def module_level_imports(path: Path) -> set[str]:
    """Top-level names a module imports when it is loaded (not inside its functions: those run on a call)."""
    names: set[str] = set()
    todo: list[ast.AST] = list(ast.parse(path.read_text()).body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            names |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.partition(".")[0])
        elif isinstance(node, ast.If | ast.Try | ast.ClassDef | ast.With):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            todo += [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt | ast.excepthandler)]
        elif isinstance(node, ast.ExceptHandler):
            todo += node.body
    return names


def test_every_package_the_gateway_container_imports_is_installed_by_its_image(tmp_path: Path) -> None:
    bundle = GatewayBundle(
        app_name="fleet-gateway",
        modal_environment="main",
        config=GatewayConfig(),
        endpoints={"m": ModelEndpoint(url="https://m.modal.run", gpu_type="L4", gpu_count=1)},
        prices={"L4": 0.8},
    )
    env = {**os.environ, GATEWAY_BUNDLE_ENV: bundle.to_env(), "PYTHONPATH": str(PLATFORM)}
    done = subprocess.run(
        [sys.executable, "-c", LOADED], env=env, cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert "modelfleet.gateway.fleet_metrics" in loaded
    imported: dict[str, set[str]] = {}
    for module in loaded:
        path = _module_file(module)
        assert path is not None, module
        for top in module_level_imports(path):
            if top not in sys.stdlib_module_names and top not in ("__future__", "modelfleet"):
                imported.setdefault(top, set()).add(module)
    assert "prometheus_client" in imported  # /metrics is built there
    allowed = installed_with(pinned_distributions(gateway_packages()) | {"modal"})
    missing = sorted(
        f"{top} ({', '.join(sorted(who))})"
        for top, who in imported.items()
        if not set(distributions_of(top)) & allowed  # a namespace package: any of its distributions
    )
    assert missing == [], (
        "platform/modelfleet/targets/modal/gateway_entry.py: GATEWAY_PACKAGES: the gateway container imports "
        f"{missing}, which neither GATEWAY_PACKAGES nor the modal client installs; pin them"
    )


def test_the_gateway_image_pins_prometheus_client_for_its_metrics() -> None:
    assert "prometheus-client" in pinned_distributions(gateway_packages())
