"""The quality gate: a deploy must answer right, not only answer.

``run_quality_gate`` is the one entry point, and it needs only an endpoint: ``fleet smoke``
calls it after the serving checks, and a "before cutover" step can call it against a
candidate (a staging app) before traffic moves. It runs

1. every golden prompt of ``golden.toml`` with its checks (``postdeploy.golden``);
2. the logprob fingerprint against the baseline for this deploy's key
   (``postdeploy.fingerprint``, ``state.BaselineStore``):

   - a baseline for exactly this key: the fingerprint must match it within the tolerance;
   - no baseline for the model at all: this deploy's fingerprint is recorded as the
     baseline (the first deploy) and the check says so -- review it with ``fleet baseline``;
   - baselines for other keys only (a new revision, dtype, quantization, GPU or vLLM): the
     check names what changed and compares with the newest of them; a match passes (and
     records nothing: recording stays the explicit ``fleet baseline``), a mismatch fails;
3. the ``[eval]`` benchmark, when declared (``postdeploy.evaluation``).

Each becomes a :class:`~modelfleet.postdeploy.smoke.Check`, so the deploy report shows
them beside the serving checks. Nothing here knows a target.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import httpx2
import openai

from modelfleet.errors import FleetError
from modelfleet.postdeploy.evaluation import run_eval
from modelfleet.postdeploy.fingerprint import (
    DEFAULT_TOLERANCE,
    Fingerprint,
    Tolerance,
    compare,
    take_fingerprint,
)
from modelfleet.postdeploy.golden import ask, judge
from modelfleet.postdeploy.record import Record
from modelfleet.postdeploy.smoke import Check, CheckFailed, run_timed
from modelfleet.postdeploy.waiting import Deadline, deadline_client
from modelfleet.runtime.tokens import Credentials
from modelfleet.spec.golden import GoldenSpec, Prompt
from modelfleet.state import BaselineKey, BaselineStore, StoredBaseline

FINGERPRINT_CHECK = "fingerprint matches the baseline"
T = TypeVar("T")


class GateError(FleetError):
    """The endpoint did not answer the gate's requests."""


class GateResult(Record):
    """The gate's checks, and the fingerprint it took (kept out of reports: it holds token ids)."""

    checks: tuple[Check, ...]
    fingerprint: Fingerprint | None = None
    baseline_recorded: bool = False

    @property
    def ok(self) -> bool:
        """Every gate check passed."""
        return all(check.ok for check in self.checks)


class Endpoint(Record):
    """Where the gate asks: the base URL, the served name, and how long each request may wait."""

    url: str
    served_name: str
    timeout: float = 300.0


def run_quality_gate(
    endpoint: Endpoint,
    credentials: Credentials,
    golden: GoldenSpec,
    *,
    model: str,
    key: BaselineKey,
    baselines: BaselineStore,
    version: str = "",
    record_missing: bool = True,
    model_folder: str = "",
    tolerance: Tolerance | None = None,
) -> GateResult:
    """Golden checks, fingerprint and (if declared) the eval, against ``endpoint``; see the module docstring.

    ``record_missing`` False never writes a baseline (a candidate gated before cutover may
    leave the recording to the deploy that is promoted). ``model_folder`` is where an
    ``[eval]`` task file is read from. ``tolerance`` overrides golden.toml's and the
    platform's (``fingerprint.DEFAULT_TOLERANCE``): an endpoint known to take no other
    traffic answers exactly and may be held to less.
    """
    clients = _Clients(endpoint, credentials)
    checks: list[Check] = []
    for prompt in golden.prompt:
        checks.append(
            run_timed(f"golden {prompt.name}", lambda p=prompt: _golden(clients, endpoint, golden, p))  # type: ignore[misc]
        )
    taken: list[Fingerprint] = []
    recorded: list[bool] = []

    def fingerprint_check() -> str:
        fingerprint = clients.run(lambda client: take_fingerprint(client, endpoint.served_name, golden))
        taken.append(fingerprint)
        detail, wrote = _against_baseline(
            fingerprint,
            tolerance or tolerance_of(golden),
            model=model,
            key=key,
            baselines=baselines,
            version=version,
            record=record_missing,
        )
        recorded.append(wrote)
        return detail

    checks.append(run_timed(FINGERPRINT_CHECK, fingerprint_check))
    if golden.eval is not None:
        checks.append(
            run_timed(
                f"eval {golden.eval.task_file}",
                lambda: run_eval(endpoint.url, endpoint.served_name, credentials, golden, model_folder),
            )
        )
    return GateResult(
        checks=tuple(checks), fingerprint=taken[0] if taken else None, baseline_recorded=bool(recorded and recorded[0])
    )


def take_endpoint_fingerprint(endpoint: Endpoint, credentials: Credentials, golden: GoldenSpec) -> Fingerprint:
    """The endpoint's fingerprint alone (``fleet baseline``, and the sleep/wake comparison)."""
    return _Clients(endpoint, credentials).run(lambda client: take_fingerprint(client, endpoint.served_name, golden))


def greedy_answers(endpoint: Endpoint, credentials: Credentials, golden: GoldenSpec) -> dict[str, tuple[int, ...]]:
    """Each fingerprinted prompt's greedy answer as token ids (the snapshot step's sleep/wake comparison).

    A failed request is a ``FleetError``, which ends the snapshot loop like a failed probe.
    """
    try:
        fingerprint = take_endpoint_fingerprint(endpoint, credentials, golden)
    except (openai.APIError, httpx2.HTTPError, ValueError) as error:
        # The SDK wraps the transport error; its cause says what happened (a WaitExpired, too many 303s).
        cause = error.__cause__ if isinstance(error, openai.APIConnectionError) and error.__cause__ else error
        raise GateError(f"{endpoint.url}: greedy answers failed: {cause.__class__.__name__}: {cause}") from None
    return {p.prompt: p.token_ids for p in fingerprint.prompts}


def record_baseline(
    baselines: BaselineStore, model: str, key: BaselineKey, fingerprint: Fingerprint, *, version: str, reason: str
) -> StoredBaseline:
    """Store ``fingerprint`` as the model's baseline for ``key`` (replacing one recorded before)."""
    stored = StoredBaseline(key=key, version=version, reason=reason, fingerprint=fingerprint.model_dump(mode="json"))
    baselines.put(model, stored)
    return stored


def tolerance_of(golden: GoldenSpec) -> Tolerance:
    """The fingerprint tolerance golden.toml declares, the platform's where it declares none."""
    declared = golden.fingerprint
    return Tolerance(
        mean_nats=declared.mean_drift or DEFAULT_TOLERANCE.mean_nats,
        max_nats=declared.max_drift or DEFAULT_TOLERANCE.max_nats,
    )


def _against_baseline(
    fingerprint: Fingerprint,
    tolerance: Tolerance,
    *,
    model: str,
    key: BaselineKey,
    baselines: BaselineStore,
    version: str,
    record: bool,
) -> tuple[str, bool]:
    """(detail, whether a baseline was recorded); raises CheckFailed when the fingerprint does not match."""
    stored = baselines.get(model, key)
    if stored is not None:
        result = compare(Fingerprint.model_validate(stored.fingerprint), fingerprint, tolerance)
        if not result.ok:
            raise CheckFailed(
                f"the model answers differently from its baseline of {stored.recorded_at}: {result.detail}"
            )
        return f"matches the baseline of {stored.recorded_at}: {result.detail}", False
    others = baselines.all(model)
    if not others:
        if not record:
            return f"no baseline yet for key {key.slug()}; not recorded here (the deploy records it)", False
        record_baseline(baselines, model, key, fingerprint, version=version, reason="first deploy")
        return (
            f"no baseline yet: recorded this deploy's as the baseline for key {key.slug()} (first deploy); "
            f"review it, and refresh it with `fleet baseline {model}`",
            True,
        )
    newest = others[0]
    changed = ", ".join(newest.key.differences(key))
    result = compare(Fingerprint.model_validate(newest.fingerprint), fingerprint, tolerance)
    if not result.ok:
        # The hint comes before the comparison's detail: a report cuts long details short.
        raise CheckFailed(
            f"no baseline for this deploy's key ({changed}) and it answers differently from the baseline of "
            f"{newest.recorded_at}; if the change is intended, review the answers and run `fleet baseline {model}`: "
            f"{result.detail}"
        )
    return (
        f"no baseline for this deploy's key ({changed}); it matches the previous key's baseline: {result.detail}. "
        f"Record one with `fleet baseline {model}`",
        False,
    )


def _golden(clients: _Clients, endpoint: Endpoint, golden: GoldenSpec, prompt: Prompt) -> str:
    answer = clients.run(lambda client: ask(client, endpoint.served_name, golden, prompt))
    passed, detail = judge(prompt, answer)
    if not passed:
        raise CheckFailed(detail)
    return detail


class _Clients:
    """Runs a function with an SDK client whose every hop stops at ``endpoint.timeout`` (Modal's 303s included)."""

    def __init__(self, endpoint: Endpoint, credentials: Credentials) -> None:
        self.base = endpoint.url.rstrip("/")
        self.timeout = endpoint.timeout
        self.credentials = credentials

    def run(self, call: Callable[[openai.OpenAI], T]) -> T:
        """``call(client)`` with a fresh client on a fresh deadline."""
        with deadline_client(Deadline(self.timeout)) as http:
            client = openai.OpenAI(
                base_url=f"{self.base}/v1", api_key=self.credentials.api_key, http_client=http, max_retries=0
            )
            return call(client)
