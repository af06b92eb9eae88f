"""What every step gets: the runner, the filesystem root, the clock.

All paths go through `Ctx.path()` so tests run against a temp tree, and all
waiting goes through `sleep`/`clock` so tests never really wait.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from builder.node.runner import Result, Runner

log = logging.getLogger("clusterctl")


def _no_hook(event: str) -> None:
    pass


@dataclass
class Ctx:
    runner: Runner
    root: Path = Path("/")
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    # Called at points between non-command side effects (tests inject power loss).
    hook: Callable[[str], None] = _no_hook

    def path(self, p: str | os.PathLike[str]) -> Path:
        """Host path -> path under root."""
        return self.root / os.fspath(p).lstrip("/")

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float | None = None,
    ) -> Result:
        return self.runner([os.fspath(a) for a in argv], check=check, input=input, timeout=timeout)

    def mark(self, event: str) -> None:
        log.debug("checkpoint %s", event)
        self.hook(event)

    def wait_until(
        self, what: str, probe: Callable[[], bool], timeout_s: float, every_s: float = 2.0
    ) -> bool:
        """Poll `probe` until true or `timeout_s` passed; returns the last answer."""
        deadline = self.clock() + timeout_s
        while True:
            if probe():
                return True
            if self.clock() >= deadline:
                log.warning("gave up waiting for %s after %.0f s", what, timeout_s)
                return False
            self.sleep(every_s)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write via tmp + fsync + rename. Returns False (and touches nothing) when
    the file already has exactly this content and mode."""
    try:
        if path.read_text() == text and (path.stat().st_mode & 0o7777) == mode:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fchmod(f.fileno(), mode)
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return True
