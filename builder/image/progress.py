"""Stages of a long build, each shown with the time since the build started."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape


class Stages:
    """Callable progress sink: `stages("Installing Debian")` starts a stage.

    Prints one line per stage on stderr, `[mm:ss] stage`, and keeps each stage's
    duration for the summary (`durations`).
    """

    def __init__(self, console: Console | None = None, prefix: str = "image") -> None:
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.prefix = prefix
        self.started = time.monotonic()
        self._current: tuple[str, float] | None = None
        self.durations: list[tuple[str, float]] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __call__(self, stage: str) -> None:
        now = time.monotonic()
        self._close(now)
        self._current = (stage, now)
        m, s = divmod(int(now - self.started), 60)
        self.console.print(f"[dim]{self.prefix} [{m:02d}:{s:02d}][/dim] {escape(stage)}", markup=True)

    def _close(self, now: float) -> None:
        if self._current:
            name, t0 = self._current
            self.durations.append((name, now - t0))
            self._current = None

    def finish(self, message: str = "done") -> None:
        now = time.monotonic()
        self._close(now)
        m, s = divmod(int(now - self.started), 60)
        self.console.print(f"[dim]{self.prefix} [{m:02d}:{s:02d}][/dim] {escape(message)}", markup=True)
