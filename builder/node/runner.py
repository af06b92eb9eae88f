"""The one way the agent runs external commands.

Every call is logged (argv, exit code, output) through `logging`, which goes to
stderr and so to the journal under systemd. The runner is passed in, so tests
give a fake that records calls and returns scripted results.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from builder.node.errors import NodeError

log = logging.getLogger("clusterctl.run")

_LOG_OUTPUT_MAX = 4000


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        return (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()


class CommandError(NodeError):
    def __init__(self, result: Result, what: str = "") -> None:
        tail = "\n".join(result.output.splitlines()[-15:])
        msg = f"command failed (exit {result.returncode}): {shlex.join(result.argv)}"
        if what:
            msg = f"{what}: {msg}"
        super().__init__(msg + (f"\n{tail}" if tail else ""))
        self.result = result


class Runner(Protocol):
    def __call__(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float | None = None,
    ) -> Result: ...


class SubprocessRunner:
    """Runs commands for real. stdin is empty unless `input` is given, so a tool
    that unexpectedly asks a question reads EOF (= "no") instead of hanging."""

    def __init__(self, default_timeout: float = 600.0) -> None:
        self.default_timeout = default_timeout
        # Tool messages are parsed (e.g. "No valid meta data found"): fix the locale.
        self.env = {**os.environ, "LC_ALL": "C"}

    def __call__(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float | None = None,
    ) -> Result:
        args = tuple(str(a) for a in argv)
        log.info("$ %s", shlex.join(args))
        try:
            proc = subprocess.run(
                args,
                input=input if input is not None else "",
                capture_output=True,
                text=True,
                errors="replace",
                env=self.env,
                timeout=timeout if timeout is not None else self.default_timeout,
            )
            result = Result(args, proc.returncode, proc.stdout, proc.stderr)
        except FileNotFoundError:
            result = Result(args, 127, "", f"{args[0]}: command not found")
        except subprocess.TimeoutExpired:
            result = Result(args, 124, "", f"timed out after {timeout}s")
        out = result.output
        if len(out) > _LOG_OUTPUT_MAX:
            out = out[:_LOG_OUTPUT_MAX] + f"... ({len(result.output)} chars)"
        log.info("exit %d%s", result.returncode, f"\n{out}" if out else "")
        if check and not result.ok:
            raise CommandError(result)
        return result
