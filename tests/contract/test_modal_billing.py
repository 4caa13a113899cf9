"""Cost truth on Modal (real ``fleet`` CLI, real modal client, loopback API): Modal's bill beside the price table.

The recorder bills what its containers held at Modal's per-second rates (GPU, CPU, memory:
tests/support/modal_api_usage.py ``app_costs``); the fleet counts GPU-seconds from Modal's
container series and prices them with fleet.toml. Where both exist the difference is shown;
where Modal refuses billing the view keeps the price table and says why in one line.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelfleet.observe.history import frames_since, history_path
from modelfleet.observe.report import hourly_costs
from modelfleet.settings import FleetSettings
from tests.support.modal_api import ModalApiRecorder
from tests.support.modal_api_target import REPO, create_workspace, drive, run_fleet

MODEL = "smollm2-135m"
APP = f"fleet-{MODEL}"
HOUR = 3600.0
MODAL_L4_RATE = 0.00025  # $/s: $0.90/h, while fleet.toml still says $0.80/h


@pytest.fixture
def api() -> Iterator[ModalApiRecorder]:
    with ModalApiRecorder() as recorder:
        create_workspace(recorder)
        drive(recorder, "deploy", "commit-1", MODEL)
        yield recorder


def _containers_in_the_last_hours(api: ModalApiRecorder) -> list[tuple[float, float | None]]:
    """One container that ran 30 minutes of the last full hour, one running since 10 minutes before its end."""
    hour_end = math.floor(time.time() / HOUR) * HOUR
    spans: list[tuple[float, float | None]] = [(hour_end - 3000, hour_end - 1200), (hour_end - 600, None)]
    for started, finished in spans:
        api.start_container_at(APP, started, finished or 0.0)
    return spans


def _seconds_in(spans: list[tuple[float, float | None]], since: float, until: float) -> float:
    return sum(max(0.0, min(end or until, until) - max(start, since)) for start, end in spans)


def _top_json(api: ModalApiRecorder) -> dict[str, Any]:
    done = run_fleet(api, "top", "--format", "json", "--no-record")
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def _l4_price() -> float:
    return FleetSettings(root=REPO).prices.per_hour["L4"]


def test_cost_truth_puts_modals_bill_beside_the_price_table_and_shows_the_difference(api: ModalApiRecorder) -> None:
    spans = _containers_in_the_last_hours(api)
    api.set_gpu_rate("L4", MODAL_L4_RATE)

    document = _top_json(api)

    (cost,) = document["costs"]
    since, until = cost["since"], cost["until"]
    assert until - since == HOUR and until <= time.time() and until % HOUR == 0  # the last full (billed) hour
    seconds = _seconds_in(spans, since, until)
    assert seconds > 0
    assert cost["gpu_seconds"] == pytest.approx(seconds)  # Modal's container series x gpu.count (1)
    assert cost["price_table_dollars"] == pytest.approx(seconds / HOUR * _l4_price())
    gpu_billed = cost["billed_by_resource"]["GPU (L4)"]
    assert gpu_billed == pytest.approx(seconds * MODAL_L4_RATE, abs=1e-5)
    assert cost["billed_dollars"] == pytest.approx(sum(cost["billed_by_resource"].values()), abs=1e-5)
    assert cost["difference_dollars"] == pytest.approx(cost["billed_dollars"] - cost["price_table_dollars"])
    # The difference is Modal's newer GPU price plus the CPU and memory the price table does not count.
    assert cost["difference_dollars"] > gpu_billed - cost["price_table_dollars"] > 0
    assert document["notes"] == []
    assert document["modal"]["billing"]["available"] is True
    assert document["modal"]["billing"]["month_to_date_dollars"] >= cost["billed_dollars"] - 1e-6
    (view,) = document["models"]
    assert (view["replicas_running"], view["dollars_per_hour"]) == (1, pytest.approx(_l4_price()))


def test_refused_billing_keeps_the_price_table_and_says_why_in_one_line(api: ModalApiRecorder) -> None:
    spans = _containers_in_the_last_hours(api)
    api.refuse_billing()

    document = _top_json(api)

    (cost,) = document["costs"]
    assert cost["billed_dollars"] is None and cost["difference_dollars"] is None
    seconds = _seconds_in(spans, cost["since"], cost["until"])
    assert cost["price_table_dollars"] == pytest.approx(seconds / HOUR * _l4_price())
    (note,) = document["notes"]
    assert "\n" not in note
    assert "refused" in note and "PermissionDeniedError" in note and "price table" in note
    assert cost["note"] == note
    assert document["modal"]["billing"]["available"] is False

    table = run_fleet(api, "top", "--once", "--no-record")
    assert table.returncode == 0, table.stderr
    assert "refused (PermissionDeniedError" in " ".join(table.stdout.split())

    exposition = _families(api)
    assert exposition["fleet_modal_billing_available"] == {(): 0.0}
    assert set(exposition["fleet_modal_cost_dollars"]) == {(MODEL, "modal", "main", "price_table")}


def _families(api: ModalApiRecorder) -> dict[str, dict[tuple[str, ...], float]]:
    """``fleet metrics`` parsed with prometheus-client: family -> (model, target, environment, other labels in name
    order) -> value; the environment-wide families' key is ``()``."""
    done = run_fleet(api, "metrics", "--format", "prometheus")
    assert done.returncode == 0, done.stderr
    families: dict[str, dict[tuple[str, ...], float]] = {}
    for family in text_string_to_metric_families(done.stdout):
        for sample in family.samples:
            labels = dict(sample.labels)
            if "model" in labels:
                common = (labels.pop("model"), labels.pop("target"), labels.pop("environment"))
                key = (*common, *(value for _name, value in sorted(labels.items())))
            else:
                assert labels == {"target": "modal", "environment": "main"}, sample
                key = ()
            families.setdefault(sample.name, {})[key] = sample.value
    return families


def test_fleet_metrics_on_modal_yields_model_series_from_modals_figures(api: ModalApiRecorder) -> None:
    _containers_in_the_last_hours(api)
    api.record_inputs(APP, 7, time.time() - 120, execution_s=1.5)

    families = _families(api)

    labels = (MODEL, "modal", "main")
    assert families["fleet_replicas"][(*labels, "running")] == 1.0
    assert families["fleet_cost_dollars_per_hour"][labels] == pytest.approx(_l4_price())
    assert families["fleet_modal_inputs_last_hour"][(*labels, "succeeded")] == 7.0
    assert families["fleet_modal_latency_seconds"][(*labels, "request", "0.5")] == 1.5
    assert families["fleet_modal_series"][(*labels, "containers_mean", "containers")] == 1.0
    price_table = families["fleet_modal_cost_dollars"][(*labels, "price_table")]
    billed = families["fleet_modal_cost_dollars"][(*labels, "modal_billing")]
    assert families["fleet_modal_cost_difference_dollars"][labels] == pytest.approx(billed - price_table)
    assert families["fleet_modal_gpu_seconds"][labels] > 0
    assert families["fleet_modal_billing_available"] == {(): 1.0}

    as_json = run_fleet(api, "metrics", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    names = {sample["name"] for sample in json.loads(as_json.stdout)}
    assert {"fleet_replicas", "fleet_modal_cost_dollars", "fleet_modal_gpu_seconds"} <= names


def test_recorded_frames_carry_the_cost_truth_and_fleet_plots_draws_them(api: ModalApiRecorder, tmp_path: Path) -> None:
    _containers_in_the_last_hours(api)
    state = tmp_path / "state"

    for _ in range(2):  # two frames of the same billed hour: one point in the picture
        done = run_fleet(api, "top", "--once", FLEET_STATE_DIR=str(state))
        assert done.returncode == 0, done.stderr

    frames = frames_since(history_path(state), 0.0)
    assert len(frames) == 2 and all(len(frame["costs"]) == 1 for frame in frames)
    (hour,) = hourly_costs(frames)[MODEL]
    assert hour["billed_dollars"] > hour["price_table_dollars"] > 0
    plots = run_fleet(api, "plots", "--since", "1h", "--out", str(tmp_path / "plots"), FLEET_STATE_DIR=str(state))
    assert plots.returncode == 0, plots.stderr
    assert (tmp_path / "plots" / f"{MODEL}.png").stat().st_size > 0
