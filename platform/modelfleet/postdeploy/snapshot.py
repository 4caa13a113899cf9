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

The decisions are pure: ``build_snapshot`` only calls the two functions it is given,
so tests drive it against an endpoint they control.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import computed_field

from modelfleet.errors import FleetError
from modelfleet.postdeploy.probe import BootProbe
from modelfleet.postdeploy.record import Record

SnapshotResult = Literal["restored", "gave-up", "plain-cold-start", "failed"]
DEFAULT_MAX_TRIES = 5


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

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """A snapshot restored, or the model has snapshots off and booted plainly."""
        return self.result in ("restored", "plain-cold-start")

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
) -> SnapshotReport:
    """Force cold starts until a boot reports ``restore``; give up after ``max_tries``.

    ``force_cold_start`` must return only once no warm engine is left to answer, so the
    next request ``probe`` sends meets a fresh boot. A model with snapshots off is cold
    started once and its plain cold start reported. A try whose cold start or probe
    fails (a ``FleetError``) ends the loop: an endpoint that cannot answer will not
    snapshot, and each further try would wait out a whole boot timeout.
    """
    if max_tries < 1:
        raise ValueError(f"max_tries must be at least 1, got {max_tries}")
    budget = max_tries if snapshots_enabled else 1
    tries: list[SnapshotTry] = []

    def _report(result: SnapshotResult) -> SnapshotReport:
        return SnapshotReport(
            snapshots_enabled=snapshots_enabled, max_tries=max_tries, result=result, tries=tuple(tries)
        )

    for attempt in range(1, budget + 1):
        try:
            force_cold_start()
            seen = probe()
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
