"""Checks of what lives on each node: the DRBD disk and mount point, the services, their state, alerts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from builder.profile.checks import register
from builder.profile.model import Profile
from builder.profile.problems import Loc, Problem

# heartbeat's own resource scripts (/etc/ha.d/resource.d, lowercased) and
# daemons: a service with one of these names would shadow or overwrite it.
HEARTBEAT_AGENTS = {
    "audiblealarm", "delay", "filesystem", "icp", "ipaddr", "ipaddr2", "ipsrcaddr", "ipv6addr",
    "lvm", "linuxscsi", "mailto", "ocf", "raid1", "sendarp", "serveraid", "was", "winpopup",
    "xinetd", "apache", "db2", "drbddisk", "drbdupper", "hto-mapfuncs", "ids", "portblock",
    "heartbeat", "drbd", "logd", "ipfail", "dopd",
}
# Units the cluster itself runs: a service may not be one of them.
OWN_UNITS = {
    "heartbeat.service", "logd.service", "drbd.service", "cluster-firstboot.service",
    "cluster-status-port.service", "corosync.service", "pacemaker.service", "chrony.service",
    "cron.service", "ssh.service", "sshd.service", "systemd-networkd.service", "dbus.service",
}
# The mount point may not sit in these trees: MariaDB's unit protects /usr, /etc
# and /home (ProtectSystem/ProtectHome), the rest are the OS's or the cluster's own.
MOUNT_FORBIDDEN_TREES = (
    "/etc", "/home", "/usr", "/boot", "/proc", "/sys", "/dev", "/run", "/tmp", "/root", "/bin", "/sbin",
    "/lib", "/lib32", "/lib64", "/libx32", "/var/log", "/var/cache", "/var/tmp", "/var/spool",
    "/var/lib/cluster", "/var/lib/dpkg", "/var/lib/apt", "/var/lib/drbd", "/var/lib/heartbeat", "/var/lib/systemd",
)
# ... nor be one of these folders (mounting over it hides what the OS keeps there).
MOUNT_FORBIDDEN_DIRS = ("/var", "/var/lib", "/var/www", "/var/opt", "/srv", "/mnt", "/media", "/opt")
# A state path is moved onto the replicated disk and replaced by a symlink:
# never the OS's or the cluster's own files, nor a folder many packages share.
STATE_FORBIDDEN_TREES = (
    "/usr", "/boot", "/proc", "/sys", "/dev", "/run", "/tmp", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
    "/libx32", "/var/lib/cluster", "/var/lib/dpkg", "/var/lib/apt", "/var/lib/drbd", "/var/lib/heartbeat",
    "/var/lib/systemd", "/etc/ha.d", "/etc/drbd.d", "/etc/cluster", "/etc/systemd", "/etc/ssh",
)
STATE_FORBIDDEN_DIRS = ("/var/lib", "/var/log", "/var/cache", "/var/spool", "/var/tmp", "/var/www", "/var/opt",
                        "/etc/default", "/etc/init.d", "/root", "/home")


def _under(path: PurePosixPath, trees: tuple[str, ...]) -> str | None:
    return next((t for t in trees if path.is_relative_to(t)), None)


@register
def mount(p: Profile) -> Iterator[Problem]:
    d = p.drbd
    path = PurePosixPath(d.mount)
    fix = "mount the replicated filesystem in a folder of its own, e.g. /replica or /srv/replica"
    tree = _under(path, MOUNT_FORBIDDEN_TREES)
    if len(path.parts) < 2:
        yield Problem(("drbd", "mount"), "the mount point cannot be /", "use e.g. /replica", d.mount)
    elif tree:
        yield Problem(("drbd", "mount"), f"{d.mount} is under {tree}", fix, d.mount)
    elif d.mount in MOUNT_FORBIDDEN_DIRS:
        yield Problem(("drbd", "mount"), f"{d.mount} is a system folder: mounting over it hides its contents",
                      fix, d.mount)
    if ":" in d.mount:
        # haresources separates Filesystem's arguments with `::`.
        yield Problem(("drbd", "mount"), f"{d.mount!r} has a ':', which heartbeat's haresources cannot carry",
                      "use a path without ':'", d.mount)


@register
def backing(p: Profile) -> Iterator[Problem]:
    d = p.drbd
    names = {n.name for n in p.nodes}
    if d.backing.kind == "disk":
        for n in p.nodes:
            if n.name not in d.backing.disks:
                yield Problem(("drbd", "backing", "disks"), f"no disk given for node {n.name}",
                              f"add `{n.name}: /dev/disk/by-id/...`")
        for name, disk in d.backing.disks.items():
            loc: Loc = ("drbd", "backing", "disks", name)
            if name not in names:
                yield Problem(loc, f"{name!r} is not a node of this profile",
                              f"use one of: {', '.join(sorted(names))}", name)
            if not disk.startswith("/dev/") or disk.startswith(("/dev/drbd", "/dev/shm/", "/dev/mqueue/", "/dev/pts/")):
                yield Problem(loc, f"{disk} is not a disk device",
                              "name the whole disk under /dev, preferably /dev/disk/by-id/...", disk)
    elif d.backing.disks:
        yield Problem(("drbd", "backing", "disks"), "disks are only used with kind: disk",
                      "set `kind: disk` or remove `disks`")


@register
def services(p: Profile) -> Iterator[Problem]:
    names: dict[str, int] = {}
    units: dict[str, int] = {}
    for i, s in enumerate(p.services):
        if s.name in names:
            yield Problem(("services", i, "name"), f"{s.name!r} is listed twice (also services[{names[s.name]}])",
                          "list each service once", s.name)
        if s.unit in units:
            yield Problem(("services", i, "unit"), f"{s.unit} is already the unit of services[{units[s.unit]}]",
                          "list each service once", s.unit)
        if s.name.lower() in HEARTBEAT_AGENTS:
            yield Problem(("services", i, "name"), f"{s.name!r} is the name of a heartbeat resource agent",
                          f"rename the service, e.g. {s.name}-svc", s.name)
        if s.unit in OWN_UNITS or s.unit.startswith(("cluster-", "systemd-")):
            yield Problem(("services", i, "unit"), f"{s.unit} is run by the cluster or the OS itself",
                          "list the application's own unit, e.g. mariadb.service", s.unit)
        names.setdefault(s.name, i)
        units.setdefault(s.unit, i)
    yield from _state_paths(p)


def _state_paths(p: Profile) -> Iterator[Problem]:
    mount = PurePosixPath(p.drbd.mount)
    seen: list[tuple[PurePosixPath, Loc]] = []
    for i, s in enumerate(p.services):
        for j, raw in enumerate(s.state):
            path, loc = PurePosixPath(raw), ("services", i, "state", j)
            tree = _under(path, STATE_FORBIDDEN_TREES)
            if len(path.parts) < 3:
                yield Problem(loc, f"{raw} is a top-level directory",
                              "move a service's own directory, e.g. /var/lib/mysql, not a whole tree", raw)
            elif tree or raw in STATE_FORBIDDEN_DIRS:
                why = f"is under {tree}" if tree else "is a folder many packages share"
                yield Problem(loc, f"{raw} {why}: it cannot move onto the replicated disk",
                              "move the service's own directory, e.g. /var/lib/mysql", raw)
            if path.is_relative_to(mount) or mount.is_relative_to(path):
                yield Problem(loc, f"{raw} overlaps the mount point {mount}",
                              "state paths are moved onto the mount point, not under or above it", raw)
            for other, oloc in seen:
                if path.is_relative_to(other) or other.is_relative_to(path):
                    where = ".".join(str(x) for x in oloc)
                    yield Problem(loc, f"{raw} overlaps {other} ({where})",
                                  "list each directory once, no directory inside another", raw)
            seen.append((path, loc))


@register
def alerts(p: Profile) -> Iterator[Problem]:
    if p.alerts and p.alerts.smtp.user and not p.alerts.smtp.starttls:
        yield Problem(("alerts", "smtp", "user"),
                      "a login over plain SMTP would send the relay password in clear text",
                      "set alerts.smtp.starttls: true (port 587), or remove user for a relay that needs no login",
                      p.alerts.smtp.user)
