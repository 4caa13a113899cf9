"""What a deploy reports, with the real modal client against a recorder as strict as Modal.

A success reports the version and the web URL read back from the control plane (``modal app
history --json`` and an SDK lookup of the deployed class), never scraped from the CLI's human
output. A failure reports the client's last error line; a Secret that does not exist fails
the models that name it, and only those.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import REPO, create_workspace, drive

SECRET = "huggingface-secret"


@pytest.fixture
def api() -> Iterator[ModalApiRecorder]:
    with ModalApiRecorder() as recorder:
        yield recorder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Two models: one names the hub-token Secret on its server, one names none."""
    shutil.copy(REPO / "fleet.toml", tmp_path / "fleet.toml")
    shutil.copytree(REPO / "volumes", tmp_path / "volumes")
    for name in ("gated", "plain"):
        shutil.copytree(REPO / "models" / "smollm2-135m", tmp_path / "models" / name)
        model_file = tmp_path / "models" / name / "model.toml"
        text = model_file.read_text().replace('served_model_name = "smollm2-135m"', f'served_model_name = "{name}"')
        secrets = f'secrets = ["{SECRET}"]\n' if name == "gated" else ""  # top-level keys go first
        model_file.write_text(secrets + text)
    return tmp_path


def test_a_missing_secret_fails_the_models_that_name_it_and_the_others_deploy(
    api: ModalApiRecorder, root: Path
) -> None:
    create_workspace(api, root, skip_secrets=(SECRET,))
    assert SECRET not in api.secret_names()

    outcomes = {o["model"]: o for o in drive(api, "deploy", "commit-1", root=root)}

    assert (outcomes["plain"]["result"], outcomes["plain"]["version"]) == ("ok", "v1")
    gated = outcomes["gated"]
    assert gated["result"] == "failed"
    # The client's last error line, as Modal words a failed lookup.
    assert gated["detail"] == f"Error: Secret '{SECRET}' not found in environment 'main'"
    assert sorted(api.apps()) == ["fleet-plain"]
    assert SECRET not in api.secret_names()  # a lookup never creates it
    assert sorted(drive(api, "state", root=root)["models"]) == ["plain"]

    api.create_secret(SECRET, {"HF_TOKEN": "hf_placeholder"})
    outcomes = {o["model"]: o for o in drive(api, "deploy", "commit-2", root=root)}

    assert {m: (o["result"], o["version"]) for m, o in outcomes.items()} == {
        "gated": ("ok", "v1"),
        "plain": ("ok", "v2"),
    }


def test_a_deploy_without_the_weights_volume_fails_with_the_volume_named(api: ModalApiRecorder, root: Path) -> None:
    # Only seeding creates the weights volume; a deploy before the first seed must say so.
    for volume in ("modelfleet-vllm-cache",):
        api.create_volume(volume)
    api.create_secret(SECRET, {"HF_TOKEN": "hf_placeholder"})

    outcomes = drive(api, "deploy", "commit-1", "plain", root=root)

    assert [(o["result"], o["detail"]) for o in outcomes] == [
        ("failed", "Error: Volume 'modelfleet-weights' not found in environment 'main'")
    ]
    assert "modelfleet-weights" not in api.volume_names()


def test_a_successful_deploy_reports_the_version_and_url_read_back_from_modal(api: ModalApiRecorder) -> None:
    create_workspace(api)

    (first,) = drive(api, "deploy", "commit-1", "smollm2-135m")
    (second,) = drive(api, "deploy", "commit-2", "smollm2-135m")

    url = "https://modelfleet-test--fleet-smollm2-135m-server-serve.modal.run"
    assert (first["result"], first["version"], first["url"]) == ("ok", "v1", url)
    assert (second["result"], second["version"], second["url"]) == ("ok", "v2", url)
    # Read back after each publish: the history (version) and a lookup of the class (URL).
    names = api.call_names()
    publishes = [i for i, n in enumerate(names) if n == "AppPublish"]
    for start, end in zip(publishes, [*publishes[1:], len(names)], strict=True):
        after = names[start:end]
        assert {"AppDeploymentHistory", "ClassGet", "FunctionGet"} <= set(after), after
    assert api.unimplemented == []
