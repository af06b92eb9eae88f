"""Value types shared by the profile models: durations, sizes, names, paths.

Each type parses the human spelling once ("500ms", "2G") into a plain number, so
every writer downstream works in integers and never re-parses text.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, None: 1000}


def parse_duration(value: object) -> int:
    """'500ms', '2s', '3m', '1h' or a bare number of seconds -> milliseconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 2s or 500ms")
    if isinstance(value, int | float):
        return round(value * 1000)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return round(float(m.group(1)) * _UNIT_MS[m.group(2)])
    raise ValueError(f"{value!r} is not a duration: write e.g. 2s, 500ms, 5m or a number of seconds")


_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_UNIT_BYTES = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(value: object) -> int:
    """'512M', '2G', '2GiB' or a bare number of bytes -> bytes (binary units)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            unit = (m.group(2) or "").upper().rstrip("B").rstrip("I") or ("B" if m.group(2) else "")
            return int(m.group(1)) * _UNIT_BYTES[unit]
    raise ValueError(f"{value!r} is not a size: write e.g. 512M, 2G or a number of bytes")


def _absolute_path(value: str) -> str:
    p = PurePosixPath(value)
    if not p.is_absolute():
        raise ValueError(f"{value!r} is not an absolute path: start it with /")
    if ".." in p.parts or value != str(p) or value.startswith("//"):
        raise ValueError(f"{value!r} is not a clean path: no '..', '//' or trailing '/'")
    return value


_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")


def _dns_label(value: str) -> str:
    if not _LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid host name: use lowercase letters, digits and '-', "
            "start with a letter, at most 63 characters"
        )
    return value


_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


def _mac(value: str) -> str:
    value = value.lower()
    if not _MAC.match(value):
        raise ValueError(f"{value!r} is not a MAC address: write six hex pairs, e.g. 52:54:00:12:34:56")
    return value


_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


def _ifname(value: str) -> str:
    if not _IFNAME.match(value):
        raise ValueError(f"{value!r} is not an interface name: 1-15 letters, digits, '_', '.', '-'")
    return value


Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": ["string", "number"], "examples": ["500ms", "2s", "5m"]}),
]
Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema({"type": ["string", "integer"], "examples": ["512M", "2G"]}),
]
AbsPath = Annotated[str, AfterValidator(_absolute_path)]
HostName = Annotated[str, AfterValidator(_dns_label)]
Mac = Annotated[str, AfterValidator(_mac)]
IfName = Annotated[str, AfterValidator(_ifname)]


def format_duration(ms: int) -> str:
    """Milliseconds -> the shortest spelling heartbeat accepts ('2', '500ms')."""
    return str(ms // 1000) if ms % 1000 == 0 else f"{ms}ms"
