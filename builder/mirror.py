"""Find the Debian mirror in the build host's apt configuration.

No mirror host name is ever written into the project: the image build and the
setup script and the packaging tests read it here at run time (or take the profile's `cluster.mirror`).

Standard library only, and runnable as a script, so `scripts/setup-mkosi.sh`
uses the same rules before the project's virtualenv exists:

    PYTHONPATH=. python3 -m builder.mirror mirror     # http://.../debian
    PYTHONPATH=. python3 -m builder.mirror security   # http://.../debian-security
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

# Suites of the Debian archive proper: a source whose suite is none of these
# (third-party repositories: "nodistro", "cloud-sdk-bookworm", ...) is ignored.
_DEBIAN_SUITE = re.compile(
    r"^(buster|bullseye|bookworm|trixie|forky|duke|sid|experimental|"
    r"oldoldstable|oldstable|stable|testing|unstable)"
    r"(-updates|-backports|-backports-sloppy|-proposed-updates|-security)?/?$"
)


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    origin: str  # the file it came from

    @property
    def is_security(self) -> bool:
        return self.uri.rstrip("/").endswith("-security")

    @property
    def is_debian(self) -> bool:
        return bool(self.suites) and all(_DEBIAN_SUITE.match(s) for s in self.suites)


def _one_line(path: Path) -> list[AptSource]:
    out = []
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        line = re.sub(r"\[[^]]*\]", " ", line[4:])
        words = line.split()
        if len(words) < 2:
            continue
        out.append(AptSource(words[0], (words[1],), tuple(words[2:]), str(path)))
    return out


def _deb822(path: Path) -> list[AptSource]:
    out = []
    text = "\n".join(
        line for line in path.read_text(errors="replace").splitlines() if not line.startswith("#")
    )
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in para.splitlines():
            if line[:1].isspace() and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").strip().lower() in ("no", "false", "0"):
            continue
        suites = tuple(fields.get("suites", "").split())
        comps = tuple(fields.get("components", "").split())
        for uri in fields.get("uris", "").split():
            out.append(AptSource(uri, suites, comps, str(path)))
    return out


def host_sources(root: Path = Path("/")) -> list[AptSource]:
    """Every `deb` source of the host, in apt's reading order."""
    etc = root / "etc/apt"
    found: list[AptSource] = []
    main = etc / "sources.list"
    if main.is_file():
        found += _one_line(main)
    parts = etc / "sources.list.d"
    if parts.is_dir():
        for f in sorted(parts.iterdir()):
            if f.name.endswith(".list") and f.is_file():
                found += _one_line(f)
            elif f.name.endswith(".sources") and f.is_file():
                found += _deb822(f)
    return found


def debian_mirror(sources: list[AptSource]) -> str | None:
    """The first source that serves Debian main (not the security archive)."""
    for s in sources:
        if s.is_debian and not s.is_security and "main" in s.components:
            return s.uri.rstrip("/")
    return None


def security_mirror(sources: list[AptSource], mirror: str | None = None) -> str | None:
    """The host's security archive; else `<mirror>-security` when the mirror ends in /debian."""
    for s in sources:
        if s.is_security:
            return s.uri.rstrip("/")
    if mirror and mirror.rstrip("/").endswith("/debian"):
        return mirror.rstrip("/") + "-security"
    return None


def mirror_for(profile_mirror: str | None, root: Path = Path("/")) -> str:
    """The profile's mirror, else the host's Debian mirror, else a BuilderError saying how to set one."""
    if profile_mirror:
        return profile_mirror.rstrip("/")
    found = debian_mirror(host_sources(root))
    if found is None:
        from builder.errors import BuilderError

        raise BuilderError(
            "no Debian mirror found in /etc/apt/sources.list or sources.list.d/",
            hint="set cluster.mirror in the profile, e.g. mirror: http://<your mirror>/debian",
        )
    return found


def main(argv: list[str]) -> int:
    sources = host_sources()
    mirror = debian_mirror(sources)
    what = argv[1] if len(argv) > 1 else "mirror"
    value = mirror if what == "mirror" else security_mirror(sources, mirror)
    if not value:
        print(f"no Debian {what} found in /etc/apt/sources.list{{,.d/*}}", file=sys.stderr)
        return 1
    print(value)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
