"""The recorder answers as Modal does where the fleet depends on it (real modal 1.6.4 client).

- Lookups are strict: ``from_name`` of a Secret or Volume that does not exist is NOT_FOUND
  unless ``create_if_missing``; a Secret without a required key fails.
- A rollback is a new version serving the older definition; ``--strategy recreate`` makes the
  client stop the containers that started before it, ``rolling`` (the default) leaves them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.modal_api import ModalApiRecorder

TIMEOUT_S = 90

APP_SOURCE = textwrap.dedent(
    """
    import os
    import modal

    app = modal.App("versioned")

    @app.function(gpu=os.environ["TEST_GPU"])
    def work() -> None:
        pass
    """
)


@pytest.fixture
def api() -> Iterator[ModalApiRecorder]:
    with ModalApiRecorder() as recorder:
        yield recorder


def run(api: ModalApiRecorder, args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env={**api.subprocess_env(), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def python(api: ModalApiRecorder, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run(api, ["-c", textwrap.dedent(code)], cwd)


def test_a_missing_secret_or_volume_is_not_found_and_never_created_by_a_lookup(
    api: ModalApiRecorder, tmp_path: Path
) -> None:
    secret = python(api, 'import modal; modal.Secret.from_name("hf").hydrate()', tmp_path)
    volume = python(api, 'import modal; modal.Volume.from_name("weights").hydrate()', tmp_path)

    assert secret.returncode != 0
    assert "NotFoundError: Secret 'hf' not found in environment 'main'" in secret.stderr
    assert volume.returncode != 0
    assert "NotFoundError: Volume 'weights' not found in environment 'main'" in volume.stderr
    assert api.secret_names() == [] and api.volume_names() == []

    created = python(api, 'import modal; modal.Volume.from_name("weights", create_if_missing=True).hydrate()', tmp_path)
    assert created.returncode == 0, created.stderr
    assert api.volume_names() == ["weights"]


def test_a_secret_made_by_the_helper_is_found_and_its_required_keys_are_checked(
    api: ModalApiRecorder, tmp_path: Path
) -> None:
    api.create_secret("hf", {"HF_TOKEN": "hf_placeholder"})

    found = python(api, 'import modal; modal.Secret.from_name("hf", required_keys=["HF_TOKEN"]).hydrate()', tmp_path)
    lacking = python(api, 'import modal; modal.Secret.from_name("hf", required_keys=["WANDB_KEY"]).hydrate()', tmp_path)

    assert found.returncode == 0, found.stderr
    assert lacking.returncode != 0
    assert "Secret 'hf' is missing required keys: WANDB_KEY" in lacking.stderr


def deploy(api: ModalApiRecorder, path: Path, gpu: str) -> None:
    done = run(api, ["-m", "modal", "deploy", str(path)], path.parent, TEST_GPU=gpu)
    assert done.returncode == 0, done.stderr


def served_gpu(api: ModalApiRecorder, cwd: Path) -> str:
    done = python(api, 'import modal; print(modal.Function.from_name("versioned", "work").info().gpus[0][0])', cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_rollback_is_a_new_version_serving_the_older_definition_and_recreate_stops_old_containers(
    api: ModalApiRecorder, tmp_path: Path
) -> None:
    path = tmp_path / "versioned.py"
    path.write_text(APP_SOURCE)
    deploy(api, path, "L4")
    deploy(api, path, "A10")
    assert served_gpu(api, tmp_path) == "A10"
    old = api.start_container("versioned")

    rolling = run(api, ["-m", "modal", "app", "rollback", "versioned", "v1"], tmp_path)

    assert rolling.returncode == 0, rolling.stderr
    assert served_gpu(api, tmp_path) == "L4"
    assert api.running_containers("versioned") == [old]  # rolling: left to drain
    assert "ContainerStop" not in api.call_names()
    (request,) = api.requests("AppRollback")
    assert request.version == 1
    history = json.loads(run(api, ["-m", "modal", "app", "history", "versioned", "--json"], tmp_path).stdout)
    assert [row["version"] for row in history] == ["v3", "v2", "v1"]
    assert [(d.version, d.rollback_version) for d in api.apps()["versioned"].deployments] == [(1, 0), (2, 0), (3, 1)]

    recreate = run(api, ["-m", "modal", "app", "rollback", "versioned", "--strategy", "recreate"], tmp_path)

    assert recreate.returncode == 0, recreate.stderr
    assert api.requests("AppRollback")[-1].version == -1  # the CLI's "previous version"
    assert api.apps()["versioned"].deployments[-1].rollback_version == 2
    assert served_gpu(api, tmp_path) == "A10"
    assert [r.task_id for r in api.requests("ContainerStop")] == [old]
    assert api.running_containers("versioned") == []
    assert [c.version for c in api.containers("versioned")] == [2]
    assert api.unimplemented == []
