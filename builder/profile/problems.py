"""A problem in a profile: where (field path and YAML line), what, and the fix."""

from __future__ import annotations

import re
from dataclasses import dataclass

Loc = tuple[str | int, ...]


# A key is echoed only when it looks like one: a file that is no profile at all
# (a symlink to /etc/shadow) must not have its lines printed as "unknown keys".
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.\[\]-]{1,64}")


def key_str(key: str | int) -> str:
    if isinstance(key, int) or _PLAIN_KEY.fullmatch(key):
        return str(key)
    return f"<a key of {len(key)} characters>"


def path_str(loc: Loc) -> str:
    """('nodes', 1, 'replication', 'address') -> 'nodes[1].replication.address'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{key_str(part)}" if out else key_str(part))
    return out


@dataclass(frozen=True)
class Problem:
    loc: Loc
    message: str
    fix: str
    value: object = None

    @property
    def path(self) -> str:
        return path_str(self.loc) or "(profile)"

    def render(self, source: str = "", line: int | None = None) -> str:
        where = f"{source}:{line}: " if source and line else (f"{source}: " if source else "")
        return f"{where}{_cut(self.path)}: {_cut(self.message)}\n  fix: {_cut(self.fix)}"


def _cut(text: str, limit: int = 300) -> str:
    """One line, of a readable length: a message never echoes a huge or multi-line value."""
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else text[:limit] + "..."
