"""The one package model both writers (deb, rpm) consume.

Everything a writer needs is computed here once, from the profile and the
staging tree: name, version, dependencies in both naming schemes, the files
with their modes, which are conffiles, and the units the maintainer scripts
enable or disable. The writers only format it.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath

from builder.errors import BuilderError, InputError
from builder.profile.model import Profile
from builder.staging import StagedFile, Tree

# Same dependency in Debian and RPM naming; the mail agent differs most.
BASE_DEB_DEPENDS = (
    "heartbeat",
    "drbd-utils",
    "python3",
    "chrony",
    "cron",
    "msmtp-mta | mail-transport-agent",
    # heartbeat's MailTo and DRBD's notify handlers send with `mail`.
    "bsd-mailx | mailx",
    "systemd",
)
# crontabs owns /etc/cron.d on RPM distributions (cronie pulls it in, rpmlint wants it named).
BASE_RPM_REQUIRES = (
    "heartbeat",
    "drbd-utils",
    "python3",
    "chrony",
    "cronie",
    "crontabs",
    "msmtp",
    "mailx",
    "systemd",
)

FIRSTBOOT_UNIT = "cluster-firstboot.service"
# heartbeat's own postinst enables these; the node agent starts heartbeat after provisioning.
HA_UNITS = ("heartbeat.service", "logd.service")
STATE_DIR = "/var/lib/cluster"
# Files the tree replaces although another package ships them (path -> owner).
# drbd-utils' global_common.conf carries DRBD 9 options the 8.4 parser rejects,
# and drbd.conf includes it by this name: ours must take its place.
DISPLACED = {"/etc/drbd.d/global_common.conf": "drbd-utils"}
UNIT_DIRS = ("/usr/lib/systemd/system", "/lib/systemd/system")
_BUILD = re.compile(r"^[0-9][0-9A-Za-z.]*$")
_PLAIN_PATH = re.compile(r"^/[A-Za-z0-9@_.+:/-]+$")


@dataclass(frozen=True)
class Package:
    name: str  # <cluster>-cluster
    cluster: str
    version: str  # upstream part, from cluster.version
    build: str  # build number: a rebuild of the same version upgrades
    summary: str
    description: str  # long description, plain lines
    maintainer: str
    deb_depends: tuple[str, ...]
    rpm_requires: tuple[str, ...]
    files: tuple[StagedFile, ...]  # sorted by path
    firstboot_unit: str
    # Every unit the package ships (first boot, status port): enabled at install.
    enabled_units: tuple[str, ...]
    boot_disabled_units: tuple[str, ...]  # heartbeat starts these, not systemd

    @property
    def deb_version(self) -> str:
        return f"{self.version}-{self.build}"

    @property
    def deb_filename(self) -> str:
        return f"{self.name}_{self.deb_version}_all.deb"

    @property
    def rpm_filename(self) -> str:
        return f"{self.name}-{self.version}-{self.build}.noarch.rpm"

    @property
    def conffiles(self) -> tuple[str, ...]:
        return tuple(str(f.path) for f in self.shipped_files() if f.is_conffile)

    @property
    def displaced(self) -> tuple[str, ...]:
        return tuple(str(f.path) for f in self.files if str(f.path) in DISPLACED)

    def shipped_files(self) -> list[StagedFile]:
        """The tree as both formats ship it: a file that replaces another package's
        (drbd-utils' global_common.conf) travels beside its target, as
        `<path>.<package>`, and the maintainer scripts copy it into place. Shipping
        it at the target itself makes dpkg prompt on the other package's conffile
        record when that package was installed first (as in an image)."""
        return [
            replace(f, path=PurePosixPath(f"{f.path}.{self.name}")) if str(f.path) in self.displaced else f
            for f in self.files
        ]

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(str(f.path) for f in self.files if f.secret)

    @property
    def owned_dirs(self) -> tuple[str, ...]:
        """Directories only this package creates: those with "cluster" in their path.
        Shared ones (/etc/ha.d, /usr/sbin) belong to other packages or the base system."""
        dirs = {str(p) for f in self.files for p in f.path.parents if any("cluster" in part for part in p.parts[1:])}
        return tuple(sorted(dirs))

    @property
    def all_dirs(self) -> tuple[str, ...]:
        dirs = {str(p) for f in self.files for p in f.path.parents if str(p) != "/"}
        return tuple(sorted(dirs))


def build_number_now() -> str:
    """A build number that grows with time (UTC), so every rebuild upgrades."""
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


def package_model(profile: Profile, tree: Tree, build: str | None = None) -> Package:
    build = build or build_number_now()
    if not _BUILD.fullmatch(build):
        raise InputError(
            f"bad build number {build!r}",
            hint="use digits, letters and dots, starting with a digit, e.g. 3 or 20250101120000",
        )
    name = f"{profile.cluster.name}-cluster"
    files = tuple(sorted(tree, key=lambda f: str(f.path)))
    _check_files(files)
    units = {f.path.name for f in files if str(f.path.parent) in UNIT_DIRS}
    if FIRSTBOOT_UNIT not in units:
        raise BuilderError(
            f"the staging tree has no {FIRSTBOOT_UNIT}",
            hint="render the profile with `builder render` and package that tree",
        )
    services = profile.services
    deb = [*BASE_DEB_DEPENDS, *(p for s in services for p in s.packages.deb)]
    if profile.cluster.release != "bookworm" and profile.drbd.backing.kind == "partition":
        deb.append("systemd-repart")  # its own package since trixie; it makes the DRBD partition
    rpm = [*BASE_RPM_REQUIRES, *(p for s in services for p in s.packages.rpm)]
    nodes = ", ".join(n.name for n in profile.nodes)
    svc_names = ", ".join(s.name for s in services) or "none"
    description = textwrap.fill(
        f"Configuration of the two-node cluster {profile.cluster.name} (nodes {nodes}): "
        "DRBD 8.4 replicated disk, heartbeat membership and failover, virtual IP "
        f"{profile.vip.address.ip}, services {svc_names}, the node agent, health checks "
        "and the first-boot unit that provisions the node.",
        width=72,
    )
    return Package(
        name=name,
        cluster=profile.cluster.name,
        version=profile.cluster.version,
        build=build,
        summary=f"two-node HA cluster {profile.cluster.name} (DRBD + heartbeat)",
        description=description,
        maintainer=f"{name} operators <{name}@{profile.cluster.name}.invalid>",
        deb_depends=tuple(dict.fromkeys(deb)),
        rpm_requires=tuple(dict.fromkeys(rpm)),
        files=files,
        firstboot_unit=FIRSTBOOT_UNIT,
        enabled_units=tuple(sorted(units)),
        boot_disabled_units=boot_disabled(profile),
    )


def boot_disabled(profile: Profile) -> tuple[str, ...]:
    """Units systemd must not start at boot: each managed service, its socket
    (mariadb.socket would start mariadb on the passive node on a connection) and
    heartbeat itself, which the node agent starts after provisioning."""
    units: list[str] = []
    for s in profile.services:
        units += [s.unit, s.unit.removesuffix(".service") + ".socket"]
    return tuple(dict.fromkeys([*units, *HA_UNITS]))


def _check_files(files: tuple[StagedFile, ...]) -> None:
    seen: set[PurePosixPath] = set()
    for f in files:
        p = str(f.path)
        if not _PLAIN_PATH.match(p) or ".." in f.path.parts:
            raise BuilderError(f"unpackageable path in the staging tree: {p!r}")
        if f.path in seen:
            raise BuilderError(f"{p} is twice in the staging tree")
        seen.add(f.path)
        if f.path.is_relative_to(STATE_DIR):
            raise BuilderError(f"{p}: {STATE_DIR} is node state, never shipped in the package")
        if f.secret and f.mode & 0o077:
            raise BuilderError(f"{p} holds a secret but has mode {f.mode:04o}; it must be 0600")
