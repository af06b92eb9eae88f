"""Every external command of the build side goes through run().

It logs argv (with --debug), and on failure raises a BuilderError whose message
is the command as you would paste it into a shell, plus the tail of its output.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from builder.errors import BuilderError

log = logging.getLogger("builder")


def run(
    argv: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    capture: bool = True,
    input: str | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    args = [str(a) for a in argv]
    pasteable = shlex.join(args)
    log.debug("+ %s%s", f"(cd {cwd} && " if cwd else "", pasteable + (")" if cwd else ""))
    try:
        proc = subprocess.run(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            text=True,
            input=input,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.STDOUT if capture else None,
            timeout=timeout,
        )
    except FileNotFoundError:
        raise BuilderError(
            f"command not found: {args[0]}",
            hint="run `make setup` (or `builder doctor`) to install the host tools",
        ) from None
    except subprocess.TimeoutExpired:
        raise BuilderError(f"timed out after {timeout}s: {pasteable}") from None
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout or "").splitlines()[-25:])
        raise BuilderError(
            f"command failed with exit code {proc.returncode}: {pasteable}"
            + (f"\n{tail}" if tail else "")
        )
    return proc
