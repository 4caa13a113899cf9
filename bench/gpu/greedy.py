"""Greedy answers to fixed prompts, and their comparison token for token.

Sleep level 1 moves the weights to host memory and back; a wake that restored them
wrongly (a missed tensor, a stale CUDA graph pointer) still serves, but answers
differently. So the same prompts are sent before the sleep and after the wake with
temperature 0, one at a time (the same batch shape each time), and vLLM is asked for
the token ids it generated (``return_tokens_as_token_ids``) and their log-probabilities.
The comparison is exact on ids. Result files hold only hashes, counts and the first
point of difference -- no prompt or completion text.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

# Synthetic prompts of different lengths; the model has random weights, so the content is arbitrary.
PROMPTS = tuple(
    " ".join(f"item {i} of set {n}: value {(i * 7919 + n * 104729) % 1000}" for i in range(n * 6 + 2)) for n in range(8)
)
MAX_TOKENS = 64


def greedy_answers(
    base_url: str, model: str, *, engine_url: str | None = None, max_tokens: int = MAX_TOKENS
) -> list[dict[str, Any]]:
    """One greedy completion per prompt: generated token ids and their log-probabilities.

    With ``engine_url``, vLLM's prefix cache is emptied first: a prompt whose prefix is
    cached is prefilled by a different kernel path, and with random weights (nearly flat
    distributions) that alone flips some greedy choices. So each pass starts from the same
    cache state, which is what a woken engine has (sleep drops the KV cache).
    """
    answers = []
    with httpx.Client(timeout=300.0) as client:
        if engine_url is not None:
            client.post(f"{engine_url}/reset_prefix_cache").raise_for_status()
        for prompt in PROMPTS:
            body = {
                "model": model,
                "prompt": prompt,
                "max_tokens": max_tokens,
                "temperature": 0.0,
                "ignore_eos": True,
                "logprobs": 1,
                "return_tokens_as_token_ids": True,
            }
            response = client.post(f"{base_url}/v1/completions", json=body)
            response.raise_for_status()
            logprobs = response.json()["choices"][0]["logprobs"]
            # With return_tokens_as_token_ids, each token reads "token_id:<id>".
            ids = [int(token.split(":", 1)[1]) for token in logprobs["tokens"]]
            answers.append({"ids": ids, "logprobs": [float(x) for x in logprobs["token_logprobs"]]})
    return answers


def compare(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, Any]:
    """Token-for-token verdict: identical id sequences per prompt, and how far log-probabilities moved."""
    per_prompt: list[dict[str, Any]] = []
    for one, two in zip(before, after, strict=True):
        first_diff = next((i for i, (a, b) in enumerate(zip(one["ids"], two["ids"], strict=False)) if a != b), None)
        if first_diff is None and len(one["ids"]) != len(two["ids"]):
            first_diff = min(len(one["ids"]), len(two["ids"]))
        shared = min(len(one["logprobs"]), len(two["logprobs"]))
        drift = max((abs(one["logprobs"][i] - two["logprobs"][i]) for i in range(shared)), default=0.0)
        per_prompt.append(
            {
                "tokens": [len(one["ids"]), len(two["ids"])],
                "identical": first_diff is None,
                "first_difference_at": first_diff,
                "max_abs_logprob_diff": drift,
            }
        )
    return {
        "prompts": len(per_prompt),
        "identical_prompts": sum(p["identical"] for p in per_prompt),
        "tokens_compared": sum(min(p["tokens"]) for p in per_prompt),
        "all_identical": all(p["identical"] for p in per_prompt),
        "max_abs_logprob_diff": max((p["max_abs_logprob_diff"] for p in per_prompt), default=0.0),
        "per_prompt": per_prompt,
    }


def fingerprint(answers: list[dict[str, Any]]) -> str:
    """A short hash of all generated ids, to show which answer sets were equal without storing them."""
    return hashlib.sha256(json.dumps([a["ids"] for a in answers]).encode()).hexdigest()[:16]
