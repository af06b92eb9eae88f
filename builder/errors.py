"""The two ways builder stops: bad input (exit 2) and a failed step (exit 1)."""

from __future__ import annotations


class BuilderError(Exception):
    """A failure the user can act on. `hint` says how."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(BuilderError):
    """The user's input (profile, option) is wrong; nothing was written."""

    exit_code = 2

