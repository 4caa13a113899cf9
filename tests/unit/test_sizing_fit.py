"""The GPU pick of ``fleet new`` (``modelfleet.sizing``) and the one fit arithmetic it shares with the lint.

Numbers only: a ``Demand`` is what a checkpoint needs (weights GB, KV bytes per token, context,
concurrency), the prices are the repo's fleet.toml table unless a test says otherwise.
"""

from __future__ import annotations

import re

import pytest

from modelfleet.settings import FleetSettings
from modelfleet.sizing import Demand, SizingError, choose, override
from modelfleet.spec.fit import RUNTIME_OVERHEAD_GB_PER_GPU, gpu_fit
from modelfleet.spec.lints import lint
from modelfleet.spec.model import ModelSpec
from tests.unit.conftest import REPO_ROOT

PRICES = FleetSettings(root=REPO_ROOT).prices.per_hour
KV_8B = 2 * 32 * 8 * 128 * 2  # Llama 3.1 8B: 128 KiB of bf16 KV cache per token


def _demand(**changes: object) -> Demand:
    base: dict[str, object] = {
        "weights_gb": 16.06,
        "kv_bytes_per_token": KV_8B,
        "max_model_len": 8192,
        "concurrency": 8,
        "utilization": 0.90,
        "compute_dtype": "bfloat16",
        "weights_dtype": "bfloat16",
        "attention_heads": 32,
    }
    return Demand(**{**base, **changes})  # type: ignore[arg-type]


def test_the_cheapest_fit_wins_and_fallbacks_share_its_gpu_count() -> None:
    choice = choose(_demand(), PRICES)
    assert (choice.winner.gpu, choice.winner.count) == ("L4", 2)
    assert [f.ref for f in choice.fallbacks] == ["A10:2", "L40S:2"]
    assert all(f.fit.fits and f.hourly >= choice.winner.hourly for f in choice.fallbacks)
    # One row per type, cheapest first; every row's price is count x the table's.
    assert [row.gpu for row in choice.weighed][:3] == ["T4", "L4", "L40S"]
    assert all(row.hourly == pytest.approx(row.count * PRICES[row.gpu]) for row in choice.weighed)


def test_a_smaller_model_fits_one_cheap_gpu() -> None:
    choice = choose(_demand(weights_gb=9.1, compute_dtype="bfloat16", weights_dtype="fp8"), PRICES)
    assert choice.winner.ref == "L4" and not choice.winner.note  # L4 is SM 8.9: native FP8
    a10 = next(f for f in choice.fallbacks if f.gpu == "A10")
    assert a10.note and "weight-only" in a10.note


def test_bf16_is_refused_on_a_gpu_without_bf16_but_float16_is_not() -> None:
    tiny = {"weights_gb": 1.0, "concurrency": 1}
    assert choose(_demand(**tiny), PRICES).weighed[0].refused == (
        "no bf16 on T4 (SM 7.5): vLLM would cast the bf16 weights to float16"
    )
    assert choose(_demand(**tiny, compute_dtype="float16"), PRICES).winner.ref == "T4"


def test_gpu_counts_that_do_not_split_the_attention_heads_are_refused() -> None:
    with pytest.raises(SizingError, match="--gpu L40S:8: 28 attention heads do not split over 8 GPUs"):
        override(_demand(attention_heads=28), PRICES, "L40S:8")


def test_nothing_fits_names_the_option_with_the_smallest_shortfall() -> None:
    with pytest.raises(SizingError) as raised:
        choose(_demand(weights_gb=1500.0), PRICES)
    message = str(raised.value)
    # 1500 + 8.6 KV + 12 overhead = 1520.6 GB against 8 x B200's 1296 GB usable.
    assert "the closest is B200:8: needs 1520.6 GB" in message and "224.6 GB short" in message


def test_a_gpu_missing_from_the_price_table_is_not_weighed() -> None:
    choice = choose(_demand(), {"H100": 3.95, "B200": 6.25})
    assert {row.gpu for row in choice.weighed} == {"H100", "B200"} and choice.winner.ref == "H100"


def test_override_keeps_the_named_option_and_says_what_the_pick_would_have_been() -> None:
    choice = override(_demand(), PRICES, "H100")
    assert choice.winner.ref == "H100" and choice.fallbacks == ()
    assert choice.reason == "H100 was chosen with --gpu; the cheapest fit would be L4:2 at $1.60/h (H100: $3.95/h)"
    for bad, expected in (("V100", "unknown GPU 'V100'"), ("H100:3", "asks for 3 GPUs"), ("H100:x", "not TYPE")):
        with pytest.raises(SizingError, match=re.escape(expected)):
            override(_demand(), PRICES, bad)


def test_the_pick_and_the_gpu_lint_compute_the_same_need() -> None:
    """One arithmetic: at concurrency 1 the pick's need is exactly the lint's, for the same numbers."""
    spec = ModelSpec.model_validate(
        {
            "weights": {
                "source": "huggingface",
                "repo": "org/m",
                "revision": "0" * 40,
                "params_billion": 70.0,
                "architecture": {"num_hidden_layers": 32, "num_key_value_heads": 8, "head_dim": 128},
            },
            "gpu": {"type": "L40S"},
            "vllm": {"max_model_len": 8192, "max_num_seqs": 64},
            "scaling": {"max_concurrent_inputs": 64},
        }
    )
    (finding,) = [f for f in lint(spec, PRICES) if f.field == "gpu"]
    demand = _demand(weights_gb=140.0, concurrency=1)
    fit = demand.fit("L40S", 1)
    assert f"needs {fit.need_gb:.1f} GB" in finding.message and fit.have_text() in finding.message
    assert fit.need_gb == pytest.approx(140.0 + KV_8B * 8192 / 1e9 + RUNTIME_OVERHEAD_GB_PER_GPU)


def test_fit_reports_shortfall_and_spare() -> None:
    fit = gpu_fit("L4", 1, weights_gb=20.0, kv_gb=1.0, kv_for="at max_model_len=8192", utilization=0.9)
    assert not fit.fits and fit.shortfall_gb == pytest.approx(0.9) and fit.spare_gb == 0.0
    assert (
        fit.need_text() == "needs 22.5 GB (weights 20.0 GB + KV cache 1.0 GB at max_model_len=8192 + overhead 1.5 GB)"
    )
    assert gpu_fit("L4", 1, weights_gb=10.0, kv_gb=None, kv_for="", utilization=0.9).spare_gb == pytest.approx(10.1)
