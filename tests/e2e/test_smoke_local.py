"""Smoke, snapshot and the report against the real local fleet (demo model under vLLM).

The fleet comes up once for this module through the real CLI (``local_fleet``); every
command here runs as CI runs it: ``python -m modelfleet ...`` in a subprocess, with the
proxy token (or not) in the environment.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tests.e2e.local_fleet import DEMO, LocalFleet, local_fleet

pytestmark = pytest.mark.e2e
__all__ = ["local_fleet"]


def fleet_with(fleet: LocalFleet, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI with extra environment (a configured proxy token)."""
    return subprocess.run(
        [sys.executable, "-m", "modelfleet", *args],
        env={**fleet.env, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def report_json(fleet: LocalFleet) -> dict[str, object]:
    done = fleet.fleet("report", DEMO, "--json")
    assert done.returncode == 0, done.stderr
    (model,) = json.loads(done.stdout)["models"]
    return dict(model)


def test_smoke_passes_every_check_with_a_token_minted_for_it(local_fleet: LocalFleet) -> None:
    done = local_fleet.fleet("smoke", DEMO)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "smoke passed" in done.stdout
    for check in ("models lists the served name", "streaming works", "no credentials -> 401", "/collective_rpc"):
        assert check in done.stdout
    # The token existed for this command only.
    assert "smoke-" not in local_fleet.fleet("token", "list").stdout
    model = report_json(local_fleet)
    assert model["smoke"] == "passed" and model["boot"] == "cold"
    assert model["smoke_checks"] == {"passed": 8, "total": 8}


def test_smoke_with_a_configured_token_passes(local_fleet: LocalFleet) -> None:
    key, secret = local_fleet.create_token("e2e-smoke-ci")
    done = fleet_with(local_fleet, {"FLEET_PROXY_TOKEN_ID": key, "FLEET_PROXY_TOKEN_SECRET": secret}, "smoke", DEMO)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"


def test_smoke_with_a_wrong_token_fails_with_a_clear_message(local_fleet: LocalFleet) -> None:
    key, _ = local_fleet.create_token("e2e-smoke-wrong")
    env = {"FLEET_PROXY_TOKEN_ID": key, "FLEET_PROXY_TOKEN_SECRET": "ws-not-the-secret"}
    done = fleet_with(local_fleet, env, "smoke", DEMO)
    assert done.returncode == 1
    assert "smoke failed: smollm2-135m" in done.stderr
    assert "rejected the token from FLEET_PROXY_TOKEN_ID / FLEET_PROXY_TOKEN_SECRET" in done.stderr
    assert "ws-not-the-secret" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    model = report_json(local_fleet)
    assert model["smoke"] == "failed" and model["ok"] is False
    markdown = local_fleet.fleet("report", DEMO, "--markdown").stdout
    assert f"| {DEMO} |" in markdown and "**failed**" in markdown
    assert f"rejected key {key}" in markdown


def test_a_failed_smoke_asked_to_roll_back_records_what_the_target_could_do(local_fleet: LocalFleet) -> None:
    key, _ = local_fleet.create_token("e2e-smoke-rollback")
    env = {"FLEET_PROXY_TOKEN_ID": key, "FLEET_PROXY_TOKEN_SECRET": "ws-not-the-secret"}
    done = fleet_with(local_fleet, env, "smoke", DEMO, "--rollback-on-failure")
    assert done.returncode == 1
    assert "rollback of smollm2-135m: skipped (the local target has no rollback:" in done.stderr
    rollback = report_json(local_fleet)["rollback"]
    assert isinstance(rollback, dict) and rollback["result"] == "skipped"


def test_half_a_token_in_the_environment_is_a_one_line_error(local_fleet: LocalFleet) -> None:
    done = fleet_with(local_fleet, {"FLEET_PROXY_TOKEN_ID": "wk-only"}, "smoke", DEMO)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: FLEET_PROXY_TOKEN_SECRET is not set: set both FLEET_PROXY_TOKEN_ID and FLEET_PROXY_TOKEN_SECRET, "
        "or neither"
    )


def test_snapshot_on_the_local_target_measures_one_plain_cold_start(local_fleet: LocalFleet) -> None:
    done = local_fleet.fleet("snapshot", DEMO, "--tries", "3")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    model = report_json(local_fleet)
    assert model["snapshot"] == "plain-cold-start"
    assert isinstance(model["cold_start_ttft_seconds"], float) and model["cold_start_ttft_seconds"] > 0
    assert isinstance(model["cold_start_boot_seconds"], float) and model["cold_start_boot_seconds"] > 0
    # The fleet still serves after the forced cold start.
    assert local_fleet.fleet("smoke", DEMO).returncode == 0


def test_smoke_runs_the_quality_gate_recording_the_first_baseline_then_matching_it(local_fleet: LocalFleet) -> None:
    baselines = local_fleet.state_dir / "baselines.json"
    baselines.unlink(missing_ok=True)
    first = local_fleet.fleet("smoke", DEMO)
    assert first.returncode == 0, f"{first.stdout}\n{first.stderr}"
    assert "no baseline yet: recorded this deploy's as the baseline" in first.stdout
    assert baselines.is_file()
    again = local_fleet.fleet("smoke", DEMO)
    assert again.returncode == 0, f"{again.stdout}\n{again.stderr}"
    assert "matches the baseline of" in again.stdout
    model = report_json(local_fleet)
    assert model["quality_checks"] == {"passed": 6, "total": 6}
    smoke = model["parts"]["smoke"]  # type: ignore[index]
    assert [c["name"] for c in smoke["quality"]][-1] == "fingerprint matches the baseline"
    assert smoke["baseline_key"] and smoke["gate_seconds"] > 0
    markdown = local_fleet.fleet("report", DEMO, "--markdown").stdout
    assert "### Quality gate" in markdown and "`golden system-prompt` ok" in markdown
    # No golden answer is written to the report, only what was expected of it when a check fails.
    assert "Tokyo" not in json.dumps(model)
    # fleet baseline refreshes it explicitly, after showing the comparison.
    refreshed = local_fleet.fleet("baseline", DEMO, "--yes")
    assert refreshed.returncode == 0, f"{refreshed.stdout}\n{refreshed.stderr}"
    assert "against the baseline of" in refreshed.stdout and "baseline recorded: smollm2-135m" in refreshed.stdout
