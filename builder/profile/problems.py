"""A problem in a profile: where (field path and YAML line), what, and the fix."""

from __future__ import annotations

from dataclasses import dataclass

Loc = tuple[str | int, ...]


def path_str(loc: Loc) -> str:
    """('nodes', 1, 'replication', 'address') -> 'nodes[1].replication.address'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
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
        return f"{where}{self.path}: {self.message}\n  fix: {self.fix}"
