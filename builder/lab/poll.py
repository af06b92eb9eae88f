"""poll(condition, description): the lab's only way to wait.

Every check in a scenario waits through here: bounded, polling every few
seconds (a TCG guest pays for every request), and on timeout it names what it
waited for and the last thing it saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from builder.errors import BuilderError

T = TypeVar("T")


class CheckFailed(BuilderError):
    """A scenario check did not hold: never retried away."""


def poll(condition: Callable[[], T], description: str, *, timeout: float, every: float = 3.0) -> T:
    """Call `condition` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = condition()
            if value:
                return value
            last = value
        except (OSError, BuilderError, ValueError, KeyError) as e:  # a node still booting
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() >= deadline:
            raise CheckFailed(f"timed out after {timeout:.0f} s waiting for: {description} (last: {last!s:.300})")
        time.sleep(every)
