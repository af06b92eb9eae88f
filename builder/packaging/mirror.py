"""The Debian mirror to build against: the profile's, else the build host's own.

The mirror is never written into the repository; we read it from
/etc/apt/sources.list and sources.list.d/ at run time so builds use whatever
mirror (or proxy, or snapshot) the host already trusts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from builder.errors import BuilderError

# Debian suites; a source whose suite is not one of these is a third-party repo.
CODENAMES = frozenset(
    {"buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid", "stable", "testing", "unstable", "oldstable"}
)


def _entries(apt_dir: Path) -> Iterator[tuple[str, list[str]]]:
    """(uri, suites) for every `deb` source, in apt's reading order."""
    files = [apt_dir / "sources.list"]
    d = apt_dir / "sources.list.d"
    if d.is_dir():
        files += sorted(p for p in d.iterdir() if p.suffix in (".list", ".sources"))
    for f in files:
        if not f.is_file():
            continue
        text = f.read_text(errors="replace")
        if f.suffix == ".sources":
            yield from _deb822(text)
        else:
            yield from _one_line(text)


def _one_line(text: str) -> Iterator[tuple[str, list[str]]]:
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        line = re.sub(r"\[[^\]]*\]", " ", line)  # drop [signed-by=...] options
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "deb":
            yield parts[1], [parts[2]]


def _deb822(text: str) -> Iterator[tuple[str, list[str]]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in fields.get("types", "").split():
            continue
        for uri in fields.get("uris", "").split():
            yield uri, fields.get("suites", "").split()


def host_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """URI of the first Debian (not -security, not third-party) source of this host."""
    for uri, suites in _entries(apt_dir):
        for suite in suites:
            base, _, pocket = suite.partition("-")
            if base in CODENAMES and pocket != "security" and "security" not in uri:
                return uri.rstrip("/")
    raise BuilderError(
        f"no Debian mirror found in {apt_dir}/sources.list or sources.list.d/",
        hint="set cluster.mirror in the profile, e.g. mirror: http://<your mirror>/debian",
    )


def mirror_for(profile_mirror: str | None, apt_dir: Path = Path("/etc/apt")) -> str:
    return profile_mirror.rstrip("/") if profile_mirror else host_mirror(apt_dir)
