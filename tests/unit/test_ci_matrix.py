"""`fleet ci matrix`: the merge pipeline's job matrix for a model added, changed, removed, or the platform changed.

Each case is a real git history in a temporary repo, diffed the way the workflow does
it: ``--changed-since <github.event.before>`` against HEAD.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from modelfleet.catalog import load_catalog
from modelfleet.ci.render import render_workflows
from modelfleet.cli.app import app
from modelfleet.settings import FleetSettings
from tests.unit.conftest import MINIMAL_MODEL
from tests.unit.test_changes import commit_all, git

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fleet_git(fleet_repo: Path, write_model: Callable[[str, str], Path]) -> Path:
    """A committed fleet with models alpha, beta, gamma, a platform file and the real CI templates."""
    git(fleet_repo, "init", "--quiet", "--initial-branch=main")
    shutil.copytree(REPO_ROOT / "ci" / "templates", fleet_repo / "ci" / "templates")
    (fleet_repo / "platform" / "modelfleet").mkdir(parents=True)
    (fleet_repo / "platform" / "modelfleet" / "engine.py").write_text("VERSION = 1\n")
    for name in ("alpha", "beta", "gamma"):
        write_model(name, MINIMAL_MODEL)
    commit_all(fleet_repo, "three models")
    return fleet_repo


def run_matrix(*args: str) -> Result:
    """The command the workflow's first job runs."""
    return CliRunner().invoke(app, ["ci", "matrix", *args])


def matrix_models(result: Result) -> list[str]:
    """Model names of the printed matrix, in order; the command must have succeeded."""
    assert result.exit_code == 0, result.output
    matrix = json.loads(result.stdout)
    assert set(matrix) == {"include"}
    return [entry["model"] for entry in matrix["include"]]


def deploy_all_options(root: Path) -> list[str]:
    """The model choices a fresh render gives the manual deploy-all workflow."""
    settings = FleetSettings()
    text = render_workflows(root, load_catalog(settings), settings)["deploy-all.yml"]
    # The `model` input's options (the `environment` input lists its own before it).
    block = text.split("      model:\n", 1)[1].split("options:\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip().removeprefix("- ") for line in block.splitlines()]


def test_an_added_model_is_the_only_one_deployed(fleet_git: Path, write_model: Callable[[str, str], Path]) -> None:
    before = git(fleet_git, "rev-parse", "HEAD")
    write_model("delta", MINIMAL_MODEL)
    commit_all(fleet_git, "add delta")

    assert matrix_models(run_matrix("--changed-since", before)) == ["delta"]
    assert deploy_all_options(fleet_git) == ["all", "alpha", "beta", "delta", "gamma"]


def test_a_changed_model_is_the_only_one_deployed(fleet_git: Path, write_model: Callable[[str, str], Path]) -> None:
    before = git(fleet_git, "rev-parse", "HEAD")
    write_model("beta", MINIMAL_MODEL.replace("max_model_len = 8192", "max_model_len = 4096"))
    commit_all(fleet_git, "beta: shorter context")

    result = run_matrix("--changed-since", before)

    assert matrix_models(result) == ["beta"]
    assert "changed: beta" in result.stderr


def test_a_removed_model_deploys_nothing_and_leaves_the_workflows(fleet_git: Path) -> None:
    before = git(fleet_git, "rev-parse", "HEAD")
    git(fleet_git, "rm", "-r", "--quiet", "models/gamma")
    commit_all(fleet_git, "drop gamma")

    result = run_matrix("--changed-since", before)

    assert matrix_models(result) == []
    assert "removed: gamma" in result.stderr
    assert deploy_all_options(fleet_git) == ["all", "alpha", "beta"]


def test_a_platform_change_deploys_every_model(fleet_git: Path) -> None:
    before = git(fleet_git, "rev-parse", "HEAD")
    (fleet_git / "platform" / "modelfleet" / "engine.py").write_text("VERSION = 2\n")
    commit_all(fleet_git, "engine v2")

    result = run_matrix("--changed-since", before)

    assert matrix_models(result) == ["alpha", "beta", "gamma"]
    assert "platform changed" in result.stderr and "platform/modelfleet/engine.py" in result.stderr


def test_several_pushed_commits_are_diffed_as_one_range(
    fleet_git: Path, write_model: Callable[[str, str], Path]
) -> None:
    before = git(fleet_git, "rev-parse", "HEAD")
    write_model("delta", MINIMAL_MODEL)
    commit_all(fleet_git, "add delta")
    (fleet_git / "models" / "alpha" / "README.md").write_text("why this GPU\n")
    commit_all(fleet_git, "document alpha")

    assert matrix_models(run_matrix("--changed-since", before)) == ["alpha", "delta"]


def test_the_github_output_guards_an_empty_matrix(fleet_git: Path, tmp_path: Path) -> None:
    output = tmp_path / "github_output"
    output.write_text("earlier=1\n")
    head = git(fleet_git, "rev-parse", "HEAD")
    (fleet_git / "docs.md").write_text("not a model\n")
    commit_all(fleet_git, "docs only")

    result = run_matrix("--changed-since", head, "--github-output", str(output))

    assert matrix_models(result) == []
    assert output.read_text() == 'earlier=1\nmatrix={"include":[]}\nany=false\n'


def test_the_github_output_carries_the_matrix_on_one_line(fleet_git: Path, tmp_path: Path) -> None:
    output = tmp_path / "github_output"

    matrix_models(run_matrix("--only", "gamma,alpha", "--github-output", str(output)))

    assert output.read_text() == 'matrix={"include":[{"model":"alpha"},{"model":"gamma"}]}\nany=true\n'


@pytest.mark.parametrize("before", ["0" * 40, "1234567890abcdef1234567890abcdef12345678"])
def test_a_missing_base_commit_deploys_every_model(fleet_git: Path, before: str) -> None:
    result = run_matrix("--changed-since", before)

    assert matrix_models(result) == ["alpha", "beta", "gamma"]
    assert "every model" in result.stderr


def test_no_selection_means_every_model_and_an_empty_only_too(fleet_git: Path) -> None:
    assert matrix_models(run_matrix()) == ["alpha", "beta", "gamma"]
    assert matrix_models(run_matrix("--only", "")) == ["alpha", "beta", "gamma"]


def test_an_unknown_model_is_a_one_line_error(fleet_git: Path) -> None:
    result = run_matrix("--only", "nope")

    assert result.exit_code == 1
    assert "no valid model named 'nope' (known: alpha, beta, gamma)" in result.stderr
    assert "Traceback" not in result.output


def test_changed_since_and_only_together_are_refused(fleet_git: Path) -> None:
    result = run_matrix("--changed-since", "HEAD", "--only", "alpha")

    assert result.exit_code == 1
    assert "not both" in result.stderr


def test_a_broken_changed_folder_is_named_and_the_valid_ones_still_deploy(
    fleet_git: Path, write_model: Callable[[str, str], Path]
) -> None:
    before = git(fleet_git, "rev-parse", "HEAD")
    write_model("broken", "[weights]\nsource = 'nowhere'\n")
    write_model("delta", MINIMAL_MODEL)
    commit_all(fleet_git, "one good, one broken")

    result = run_matrix("--changed-since", before)

    assert matrix_models(result) == ["delta"]
    assert "changed but invalid, not deployed: broken" in result.stderr
