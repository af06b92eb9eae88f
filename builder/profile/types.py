"""Value types shared by the profile models: durations, sizes, names, paths.

Each type parses the human spelling once ("500ms", "2G") into a plain number, so
every writer downstream works in integers and never re-parses text.

Every string type is a whole-value match (`fullmatch`: `re.match(...$)` accepts
a trailing newline) over a small alphabet: a value from a profile can never
carry a newline, a quote, `$`, `%`, `;` or a space into a generated file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

_DURATION = re.compile(r" *(\d{1,12}(?:\.\d{1,6})?) *(ms|s|m|h)? *")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, None: 1000}
# Far above any bound a field sets, far below anything that overflows.
_MAX_MS = 366 * 24 * 3_600_000


def shown(value: object, limit: int = 60) -> str:
    """repr() of a value for a message, cut so a huge value is never echoed whole."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def parse_duration(value: object) -> int:
    """'500ms', '2s', '3m', '1h' or a bare number of seconds -> milliseconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 2s or 500ms")
    if isinstance(value, int | float) and math.isfinite(value) and abs(value) * 1000 <= _MAX_MS:
        return round(value * 1000)
    if isinstance(value, str):
        m = _DURATION.fullmatch(value)
        if m and float(m.group(1)) * _UNIT_MS[m.group(2)] <= _MAX_MS:
            return round(float(m.group(1)) * _UNIT_MS[m.group(2)])
    raise ValueError(f"{shown(value)} is not a duration: write e.g. 2s, 500ms, 5m or a number of seconds (at most a year)")


def _whole_seconds(ms: int) -> int:
    if ms % 1000:
        raise ValueError(f"{ms}ms is not a whole number of seconds (this setting counts seconds): write e.g. 1s or 15s")
    return ms


_SIZE = re.compile(r" *(\d{1,15}) *([KMGT]i?B?|B)? *", re.IGNORECASE)
_UNIT_BYTES = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(value: object) -> int:
    """'512M', '2G', '2GiB' or a bare number of bytes -> bytes (binary units)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        m = _SIZE.fullmatch(value)
        if m:
            unit = (m.group(2) or "").upper().rstrip("B").rstrip("I") or ("B" if m.group(2) else "")
            return int(m.group(1)) * _UNIT_BYTES[unit]
    raise ValueError(f"{shown(value)} is not a size: write e.g. 512M, 2G or a number of bytes")


def _matching(pattern: str, what: str, example: str) -> Callable[[str], str]:
    """A validator: the whole value matches pattern, else 'VALUE is not WHAT: write e.g. EXAMPLE'.
    `::` is refused everywhere: it separates a resource's arguments in haresources."""
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.fullmatch(value) or "::" in value:
            raise ValueError(f"{shown(value)} is not {what}: write e.g. {example}")
        return value

    return check


# Path components: letters, digits and . _ + - @ (and : for /dev/disk/by-path
# names, refused where a path meets haresources' `::` separator).
_PATH = r"(/[A-Za-z0-9_.+@:-]{1,255}){1,32}"


def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{shown(value)} is not an absolute path: start it with /")
    p = PurePosixPath(value)
    if ".." in p.parts or "." in value.split("/") or value != str(p) or value.startswith("//"):
        raise ValueError(f"{shown(value)} is not a clean path: no '.', '..', '//' or trailing '/'")
    if not re.fullmatch(_PATH, value) or len(value) > 1024 or "::" in value:
        raise ValueError(f"{shown(value)} has characters a path here may not have: "
                         "use letters, digits and . _ + - @ : between the slashes (no spaces, quotes or $)")
    return value


_LABEL = r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"


def _dns_label(value: str) -> str:
    if not re.fullmatch(_LABEL, value):
        raise ValueError(
            f"{shown(value)} is not a valid host name: use lowercase letters, digits and '-', "
            "start with a letter, at most 63 characters"
        )
    return value


def _host(value: str) -> str:
    if len(value) > 253 or not re.fullmatch(_DOMAIN, value):
        raise ValueError(f"{shown(value)} is not a host name or IPv4 address: write e.g. ntp.example.org or 192.0.2.1")
    return value


_MAC = re.compile(r"([0-9a-f]{2}:){5}[0-9a-f]{2}")


def _mac(value: str) -> str:
    value = value.lower()
    if not _MAC.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a MAC address: write six hex pairs, e.g. 52:54:00:12:34:56")
    if int(value[:2], 16) & 1:
        raise ValueError(f"{value} is a multicast or broadcast address, not a NIC's: copy the MAC from `ip link`")
    if value == "00:00:00:00:00:00":
        raise ValueError(f"{value} is the all-zero address, not a NIC's: copy the MAC from `ip link`")
    return value


def _ifname(value: str) -> str:
    # The kernel's rule (dev_valid_name) plus what /proc/sys/net reserves.
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", value) or value in (".", "..", "all", "default", "lo"):
        raise ValueError(f"{shown(value)} is not an interface name: 1-15 letters, digits, '_', '.', '-' "
                         "(not '.', '..', lo, all or default), e.g. eth0 or lan0")
    return value


Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": ["string", "number"], "examples": ["500ms", "2s", "5m"]}),
]
# A duration a tool counts in whole seconds (DRBD's wfc-timeout): 500ms would become 0.
Seconds = Annotated[Duration, AfterValidator(_whole_seconds)]
Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema({"type": ["string", "integer"], "examples": ["512M", "2G"]}),
]
AbsPath = Annotated[str, AfterValidator(_absolute_path)]
HostName = Annotated[str, AfterValidator(_dns_label)]
Host = Annotated[str, AfterValidator(_host)]
Mac = Annotated[str, AfterValidator(_mac)]
IfName = Annotated[str, AfterValidator(_ifname)]
Email = Annotated[str, AfterValidator(_matching(
    rf"[A-Za-z0-9_.+-]{{1,64}}@{_DOMAIN}", "an email address", "ops@example.org"))]
# Debian Policy 5.6.1: lowercase letters, digits, + - . ; two or more, starting alphanumeric.
DebPackage = Annotated[str, AfterValidator(_matching(
    r"[a-z0-9][a-z0-9+.-]{1,127}", "a Debian package name", "mariadb-server (a name only, no version)"))]
# RPM names: no whitespace, no % (a macro), no version operators.
RpmPackage = Annotated[str, AfterValidator(_matching(
    r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}", "an RPM package name", "mariadb-server (a name only, no version)"))]
UnitName = Annotated[str, AfterValidator(_matching(
    r"[A-Za-z0-9_.-]{1,200}\.service", "a plain systemd service unit (no template@)", "mariadb.service"))]
SmtpUser = Annotated[str, AfterValidator(_matching(
    r"[A-Za-z0-9_.@+-]{1,128}", "an SMTP user name", "alerts@example.org"))]
# A probe command's words: an argv, never a shell line.
CommandWord = Annotated[str, AfterValidator(_matching(
    r"[A-Za-z0-9_./:=@,+-]{1,255}", "a plain command word (no spaces, quotes or $)", "/usr/bin/mysqladmin"))]
SshKey = Annotated[str, AfterValidator(_matching(
    r"(ssh-(ed25519|rsa|dss)|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]{16,8192}={0,3}( [A-Za-z0-9_.@+:=-]{1,200})?",
    "an OpenSSH public key line", "the line from ~/.ssh/id_ed25519.pub (ssh-ed25519 AAAA... user@host)"))]

Version = Annotated[str, AfterValidator(_matching(
    r"[0-9][A-Za-z0-9.+~]{0,63}", "a package version (digits first, then letters, digits, . + ~)", "1.0 or 2.3.1"))]
MirrorUrl = Annotated[str, AfterValidator(_matching(
    r"(https?|file)://[A-Za-z0-9._~:/@+-]{1,500}", "a Debian mirror URL", "http://deb.example.org/debian"))]
ResourceName = Annotated[str, AfterValidator(_matching(
    r"[a-z][a-z0-9_]{0,30}", "a DRBD resource name (lowercase letter, then letters, digits, _)", "r0"))]
ResyncRate = Annotated[str, AfterValidator(_matching(
    r"[1-9][0-9]{0,9}[KMG]?", "a resync rate above 0 (bytes/s, K/M/G)", "100M"))]
PasswordHash = Annotated[str, AfterValidator(_matching(
    r"\$(y|gy|7|2[abxy]|5|6)\$[./A-Za-z0-9$]{8,200}", "a crypt(3) password hash",
    "the output of `mkpasswd -m yescrypt`"))]


def format_duration(ms: int) -> str:
    """Milliseconds -> the shortest spelling heartbeat accepts ('2', '500ms')."""
    return str(ms // 1000) if ms % 1000 == 0 else f"{ms}ms"


def spell_duration(ms: int) -> str:
    """Milliseconds -> a duration for messages, always with its unit ('3s', '500ms')."""
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"
