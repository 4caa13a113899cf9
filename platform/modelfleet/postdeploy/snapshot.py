"""Build a model's snapshot after a deploy by causing cold starts until one is a restore.

Modal has no "snapshot now" call: a deployed app's memory (+ GPU) snapshot is taken
lazily during its first few cold starts (usually fewer than five). So this loop forces
a cold start (scale the model to zero; locally, restart the engine), sends a real
request, and asks the endpoint how it booted -- until a boot reports ``restore`` or the
tries run out. Each try records the boot kind, the boot seconds the container reports
and the time to first token, so the report can show the cold start before and after.

The first cold boot also fills the vLLM compile-cache volume. It must run with exactly
the serving flags: ``--enable-sleep-mode`` changes vLLM's compile cache key, and a cache
filled with other flags is silently recompiled (on an H200 a warm cache saved ~35 s of a
127 s boot). The runtime builds one command for the snapshot hook and for serving, so
nothing here passes flags of its own -- keep it that way.

Where the model has golden prompts, each try also asks for their greedy answers (token
ids, ``answers``), and every later try must answer token for token as the first did. On
Modal the first boot is the one that put vLLM to sleep for the snapshot and woke it, and
the restore wakes an engine that was asleep in the snapshot: a woken engine that answers
differently from the one that went to sleep (vLLM has had such bugs) fails the step here,
before ``fleet smoke`` compares the restored engine with the reviewed baseline.

The decisions are pure: ``build_snapshot`` only calls the functions it is given,
so tests drive it against an endpoint they control.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import computed_field

from modelfleet.errors import FleetError
from modelfleet.postdeploy.probe import BootProbe
from modelfleet.postdeploy.record import Record

SnapshotResult = Literal["restored", "gave-up", "plain-cold-start", "failed"]
DEFAULT_MAX_TRIES = 5
# Greedy answers as token ids, one tuple per golden prompt, by prompt name.
Answers = dict[str, tuple[int, ...]]


class SnapshotTry(Record):
    """One forced cold start: how it booted and how long the first token took (or why it failed)."""

    attempt: int
    boot: str
    boot_seconds: float | None
    ttft_seconds: float | None
    error: str = ""


class SnapshotReport(Record):
    """Every try, and what they add up to (the computed fields are the report's columns)."""

    snapshots_enabled: bool
    max_tries: int
    result: SnapshotResult
    tries: tuple[SnapshotTry, ...] = ()
    # Whether every boot's greedy answers matched the first boot's token for token (None: not compared).
    answers_match: bool | None = None
    answers_detail: str = ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """A snapshot restored, or the model has snapshots off and booted plainly; no boot answered differently."""
        return self.result in ("restored", "plain-cold-start") and self.answers_match is not False

    @property
    def cold_start(self) -> SnapshotTry | None:
        """The first boot that was not a restore: the cold start without a snapshot."""
        return next((t for t in self.tries if not t.error and t.boot != "restore"), None)

    @property
    def restored_start(self) -> SnapshotTry | None:
        """The boot that restored from the snapshot, if any."""
        return next((t for t in self.tries if not t.error and t.boot == "restore"), None)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cold_start_ttft_seconds(self) -> float | None:
        """Time to first token of the cold start without a snapshot."""
        return self.cold_start.ttft_seconds if self.cold_start else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cold_start_boot_seconds(self) -> float | None:
        """Boot seconds the container reported for that cold start."""
        return self.cold_start.boot_seconds if self.cold_start else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def restored_ttft_seconds(self) -> float | None:
        """Time to first token of the boot that restored from the snapshot."""
        return self.restored_start.ttft_seconds if self.restored_start else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def restored_boot_seconds(self) -> float | None:
        """Boot seconds the container reported for the restore."""
        return self.restored_start.boot_seconds if self.restored_start else None


def build_snapshot(
    probe: Callable[[], BootProbe],
    force_cold_start: Callable[[], object],
    *,
    snapshots_enabled: bool,
    max_tries: int = DEFAULT_MAX_TRIES,
    answers: Callable[[], Answers] | None = None,
) -> SnapshotReport:
    """Force cold starts until a boot reports ``restore``; give up after ``max_tries``.

    ``force_cold_start`` must return only once no warm engine is left to answer, so the
    next request ``probe`` sends meets a fresh boot. A model with snapshots off is cold
    started once and its plain cold start reported. A try whose cold start or probe
    fails (a ``FleetError``) ends the loop: an endpoint that cannot answer will not
    snapshot, and each further try would wait out a whole boot timeout. ``answers``, when
    given, is asked after each boot's probe; each boot after the first must match it.
    """
    if max_tries < 1:
        raise ValueError(f"max_tries must be at least 1, got {max_tries}")
    budget = max_tries if snapshots_enabled else 1
    tries: list[SnapshotTry] = []
    seen_answers: list[tuple[str, Answers]] = []

    def _report(result: SnapshotResult) -> SnapshotReport:
        match, detail = compare_answers(seen_answers)
        return SnapshotReport(
            snapshots_enabled=snapshots_enabled,
            max_tries=max_tries,
            result=result,
            tries=tuple(tries),
            answers_match=match,
            answers_detail=detail,
        )

    for attempt in range(1, budget + 1):
        try:
            force_cold_start()
            seen = probe()
            if answers is not None:
                seen_answers.append((f"try {attempt} ({seen.boot})", answers()))
        except FleetError as error:
            tries.append(
                SnapshotTry(attempt=attempt, boot="failed", boot_seconds=None, ttft_seconds=None, error=str(error))
            )
            return _report("failed")
        tries.append(
            SnapshotTry(attempt=attempt, boot=seen.boot, boot_seconds=seen.boot_seconds, ttft_seconds=seen.ttft_seconds)
        )
        if not snapshots_enabled:
            return _report("plain-cold-start")
        if seen.boot == "restore":
            return _report("restored")
    return _report("gave-up")


def compare_answers(seen: Sequence[tuple[str, Answers]]) -> tuple[bool | None, str]:
    """(match, detail): every boot's greedy answers against the first boot's, token for token.

    None when fewer than two boots answered. The detail names the boot, the prompt and the
    first token position that differs -- never the tokens themselves.
    """
    if len(seen) < 2:
        return None, ""
    (first_label, first), *later = seen
    for label, answers in later:
        for prompt, tokens in first.items():
            other = answers.get(prompt, ())
            if other != tokens:
                at = next((i for i, (a, b) in enumerate(zip(tokens, other, strict=False)) if a != b), None)
                where = f"token {at + 1}" if at is not None else f"length {len(other)} vs {len(tokens)}"
                return False, (
                    f"{label} answered {prompt!r} differently from {first_label}: first difference at {where}"
                )
    total = sum(len(ids) for ids in first.values())
    return True, f"{len(seen)} boots answered the same {total} greedy tokens ({len(first)} prompts)"
