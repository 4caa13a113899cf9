"""Byte progress for seeding: rich bars with size and rate on a terminal, nothing in CI logs.

Seeding moves gigabytes; a person watching a terminal wants to see bytes and speed,
while a CI log or a pipe wants no redraw noise. :class:`SeedProgress` is the one
object the sources report to; :meth:`SeedProgress.tqdm_class` adapts it to the
tqdm-like interface ``huggingface_hub.snapshot_download`` drives.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class SeedProgress:
    """Byte bars for one seed; every method is a no-op when disabled, so callers never branch."""

    def __init__(self, *, enabled: bool) -> None:
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )

    @property
    def enabled(self) -> bool:
        """Whether bars are drawn (sources that shell out let their tool draw its own then)."""
        return self._progress is not None

    def __enter__(self) -> SeedProgress:
        # The live display starts with the first bar: a step that shells out to a tool
        # drawing its own output (pip) must not fight an empty live region.
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def add(self, description: str, total: int | None) -> TaskID | None:
        """Start a bar of ``total`` bytes (None: unknown yet)."""
        if self._progress is None:
            return None
        self._progress.start()  # idempotent
        return self._progress.add_task(description, total=total)

    def advance(self, task: TaskID | None, n_bytes: int) -> None:
        """Record ``n_bytes`` more done on a bar."""
        if self._progress is not None and task is not None:
            self._progress.advance(task, n_bytes)

    def set_total(self, task: TaskID | None, total: int | None) -> None:
        """Change a bar's total (the hub client learns file sizes as it goes)."""
        if self._progress is not None and task is not None:
            self._progress.update(task, total=total)

    def note(self, message: str) -> None:
        """A one-line step (``converting GGUF``) printed above the bars; silent when disabled."""
        if self._progress is not None:
            self._progress.console.print(message)

    def tqdm_class(self, description: str) -> type:
        """A tqdm look-alike for ``snapshot_download(tqdm_class=...)`` that feeds one byte bar.

        ``snapshot_download`` creates three bars with this class: files fetched, bytes
        transferred and bytes written. Only the last is shown: it is the one whose
        total is the sum of the file sizes.
        """
        owner = self

        class _Bar:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self.n = int(kwargs.get("initial") or 0)
                self._total = kwargs.get("total")
                desc = str(kwargs.get("desc") or "")
                shown = kwargs.get("unit") == "B" and not desc.startswith("Downloading bytes")
                self._task = owner.add(description, self._total or None) if shown else None
                owner.advance(self._task, self.n)
                self.format_dict: dict[str, Any] = {"rate": None}

            @property
            def total(self) -> Any:
                return self._total

            @total.setter
            def total(self, value: Any) -> None:
                self._total = value
                owner.set_total(self._task, int(value) if value else None)

            def update(self, n: float | None = 1) -> None:
                step = int(n or 0)
                self.n += step
                owner.advance(self._task, step)

            def refresh(self) -> None:
                pass

            def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
                pass

            def set_description_str(self, desc: str | None = None, refresh: bool = True) -> None:
                pass

            def set_postfix_str(self, postfix: str = "", refresh: bool = True) -> None:
                pass

            def close(self) -> None:
                pass

            def __enter__(self) -> _Bar:
                return self

            def __exit__(self, *args: object) -> None:
                pass

        return _Bar
