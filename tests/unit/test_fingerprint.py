"""Comparing logprob fingerprints, the baseline store, and the eval's pass rules (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfleet.postdeploy.evaluation import judge_score, wilson_lower_bound
from modelfleet.postdeploy.fingerprint import Fingerprint, PromptFingerprint, TokenStep, Tolerance, compare
from modelfleet.spec.golden import RelativeRule, WilsonRule
from modelfleet.state import BaselineKey, BaselineStore, JsonFileStore, StoredBaseline

TOLERANCE = Tolerance(mean_nats=0.05, max_nats=0.05)


def step(token: int, *alternatives: tuple[int, float]) -> TokenStep:
    """A step whose chosen token is the first alternative."""
    top = ((token, alternatives[0][1]), *alternatives[1:]) if alternatives else ((token, -0.1),)
    return TokenStep(token=token, logprob=top[0][1], top=top)


def fingerprint(*steps: TokenStep, prompt: str = "capital", digest: str = "d1") -> Fingerprint:
    return Fingerprint(
        tokens=16,
        top_k=3,
        prompts=(PromptFingerprint(prompt=prompt, digest=digest, finish_reason="stop", steps=steps),),
    )


BASE = fingerprint(step(10, (10, -0.1), (11, -2.5), (12, -3.0)), step(20, (20, -1.0), (21, -1.02), (22, -4.0)))


def test_the_same_fingerprint_has_no_drift() -> None:
    result = compare(BASE, BASE, TOLERANCE)
    assert result.ok and result.drift == 0.0 and result.compared_steps == 2


def test_a_move_within_the_tolerance_passes_and_beyond_it_fails_naming_the_token() -> None:
    near = fingerprint(step(10, (10, -0.11), (11, -2.52), (12, -3.0)), BASE.prompts[0].steps[1])
    assert compare(BASE, near, TOLERANCE).ok
    far = fingerprint(step(10, (10, -0.1), (11, -2.8), (12, -3.0)), BASE.prompts[0].steps[1])
    result = compare(BASE, far, TOLERANCE)
    assert not result.ok and result.drift == pytest.approx(0.3) and result.mean_drift == pytest.approx(0.15)
    assert result.detail.startswith(
        "logprobs moved by 0.1500 nats on average, more than 0.05; "
        "a logprob moved by 0.3000 nats at prompt 'capital' token 1, more than 0.05"
    )


def test_many_small_moves_fail_on_the_mean_though_no_single_one_is_large() -> None:
    loose = Tolerance(mean_nats=0.05, max_nats=1.0)
    moved = fingerprint(step(10, (10, -0.2), (11, -2.6), (12, -3.1)), step(20, (20, -1.1), (21, -1.12), (22, -4.1)))
    result = compare(BASE, moved, loose)
    assert not result.ok and result.mean_drift == pytest.approx(0.1) and result.drift == pytest.approx(0.1)
    assert result.detail.startswith("logprobs moved by 0.1000 nats on average, more than 0.05 (")
    assert compare(BASE, moved, Tolerance(mean_nats=0.15, max_nats=1.0)).ok


def test_a_token_that_leaves_the_top_k_counts_at_least_its_gap_to_the_new_floor() -> None:
    changed = fingerprint(step(10, (10, -0.1), (11, -2.5), (13, -2.6)), BASE.prompts[0].steps[1])
    # Token 12 (-3.0) fell out; 13 came in at -2.6 where the old floor was -3.0: it moved at least 0.4.
    assert compare(BASE, changed, TOLERANCE).drift == pytest.approx(0.4)


def test_a_changed_greedy_token_fails_unless_the_baseline_had_a_near_tie_there() -> None:
    flipped_at_tie = fingerprint(BASE.prompts[0].steps[0], step(21, (21, -1.0), (20, -1.02), (22, -4.0)))
    result = compare(BASE, flipped_at_tie, TOLERANCE)
    assert result.ok and result.noise_flips == 1
    flipped = fingerprint(step(11, (11, -0.1), (10, -2.5), (12, -3.0)))
    result = compare(BASE, flipped, TOLERANCE)
    assert not result.ok
    assert "prompt 'capital' token 1: the greedy token changed (id 10 -> 11; the baseline's choice was 2.400" in (
        result.detail
    )


def test_an_answer_of_another_length_and_an_edited_prompt_are_changes() -> None:
    shorter = fingerprint(BASE.prompts[0].steps[0])
    assert "the answer ended after 1 tokens, the baseline's after 2" in compare(BASE, shorter, TOLERANCE).detail
    edited = fingerprint(*BASE.prompts[0].steps, digest="d2")
    assert "prompt 'capital' is not in the baseline (new or edited)" in compare(BASE, edited, TOLERANCE).detail


KEY = BaselineKey(revision="org/m@abc", dtype="auto(bfloat16)", quantization="none", gpu="L4", vllm_version="0.25.0")


def test_the_baseline_store_finds_a_key_exactly_and_lists_the_models_baselines(tmp_path: Path) -> None:
    store = BaselineStore(JsonFileStore(tmp_path / "baselines.json"))
    assert store.get("m", KEY) is None and store.all("m") == []
    store.put("m", StoredBaseline(key=KEY, recorded_at="2026-01-01", fingerprint=BASE.model_dump(mode="json")))
    other = KEY.model_copy(update={"gpu": "A10"})
    store.put("m", StoredBaseline(key=other, recorded_at="2026-02-01", fingerprint=BASE.model_dump(mode="json")))
    found = store.get("m", KEY)
    assert found is not None and Fingerprint.model_validate(found.fingerprint) == BASE
    assert [b.key.gpu for b in store.all("m")] == ["A10", "L4"]
    assert store.all("other-model") == []
    assert KEY.differences(other) == ["gpu L4 -> A10"]


def test_the_wilson_bound_and_the_relative_rule() -> None:
    # 80 of 100 at 95 %: the textbook Wilson interval is (0.711, 0.867).
    assert wilson_lower_bound(80, 100, 0.95) == pytest.approx(0.7112, abs=1e-3)
    assert wilson_lower_bound(0, 0, 0.95) == 0.0
    passed, detail = judge_score(WilsonRule(min_accuracy=0.7), 0.8, 100)
    assert passed and "lower bound 0.711, at least 0.7" in detail
    # The same accuracy over 10 questions is not enough evidence.
    assert not judge_score(WilsonRule(min_accuracy=0.7), 0.8, 10)[0]
    assert judge_score(RelativeRule(expected=0.8, rtol=0.05), 0.76, 50)[0]
    passed, detail = judge_score(RelativeRule(expected=0.8, rtol=0.05), 0.75, 50)
    assert not passed and "below 0.760" in detail
