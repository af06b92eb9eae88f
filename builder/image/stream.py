"""Run a long external command, streaming its output to a log file and a callback.

The image build takes minutes: its output goes to a log file line by line (so a
failure leaves the whole story on disk), the caller sees the lines as they come
(for progress), and a failure raises a BuilderError with the command as you
would paste it into a shell and the tail of its log: no Python traceback.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from builder.errors import BuilderError

log = logging.getLogger("builder")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TAIL_LINES = 30


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _stop(proc: subprocess.Popen[str]) -> None:
    """End the command and everything it started (its own session)."""
    for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_logged(
    argv: Sequence[str | Path],
    log_file: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    hint: str | None = None,
) -> None:
    """Run argv; append its output to log_file; raise BuilderError on failure."""
    args = [str(a) for a in argv]
    pasteable = shlex.join(args)
    log.debug("+ %s (log: %s)", pasteable, log_file)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    with open(log_file, "a", encoding="utf-8", errors="replace") as logf:
        logf.write(f"+ {pasteable}\n")
        logf.flush()
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                args,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                bufsize=1,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise BuilderError(f"command not found: {args[0]}", hint=hint) from None
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                logf.write(raw)
                logf.flush()
                line = strip_ansi(raw.rstrip("\n"))
                tail.append(line)
                if on_line:
                    on_line(line)
            proc.wait()
        except BaseException:
            _stop(proc)
            logf.write(f"# interrupted after {time.monotonic() - started:.0f}s\n")
            raise
        logf.write(f"# exit code {proc.returncode} after {time.monotonic() - started:.0f}s\n")
    if proc.returncode != 0:
        text = "\n".join(tail)
        raise BuilderError(
            f"command failed with exit code {proc.returncode}: {pasteable}\n"
            f"last lines of {log_file}:\n{text}",
            hint=hint or f"the whole output is in {log_file}",
        )
