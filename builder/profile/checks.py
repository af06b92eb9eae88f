"""Every check that relates more than one field, in one place.

Each returns Problems naming the field path, the bad value and the fix. Single
values (types, bounds, patterns) are validated by the model itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from ipaddress import IPv4Interface, IPv4Network
from pathlib import PurePosixPath

from builder.profile.model import Profile
from builder.profile.problems import Problem
from builder.profile.types import format_duration as fmt

CHECKS: list[Callable[[Profile], Iterator[Problem]]] = []

# heartbeat's own resource agents: a service with one of these names would shadow it.
HEARTBEAT_AGENTS = {
    "drbddisk", "drbdupper", "filesystem", "ipaddr", "ipaddr2", "mailto", "apache",
    "delay", "lvm", "raid1", "sendarp", "xinetd", "portblock", "ids", "db2", "icp",
}
# The mount point may not sit here: MariaDB's unit protects /usr, /etc and /home
# (ProtectSystem/ProtectHome), and the rest are the OS's own.
FORBIDDEN_MOUNTS = ("/etc", "/home", "/usr", "/boot", "/proc", "/sys", "/dev", "/run", "/tmp", "/root")
EMAIL = re.compile(r"^[^@\s]+@[A-Za-z0-9.-]+$")


def check(profile: Profile) -> list[Problem]:
    return [problem for c in CHECKS for problem in c(profile)]


def _check(fn: Callable[[Profile], Iterator[Problem]]) -> Callable[[Profile], Iterator[Problem]]:
    CHECKS.append(fn)
    return fn


@_check
def nodes(p: Profile) -> Iterator[Problem]:
    if p.cluster.stack == "heartbeat" and len(p.nodes) != 2:
        yield Problem(("nodes",), f"heartbeat clusters have exactly 2 nodes, this profile has {len(p.nodes)}",
                      "list two nodes, the preferred (master) one first")
    seen: dict[str, int] = {}
    for i, n in enumerate(p.nodes):
        if n.name in seen:
            yield Problem(("nodes", i, "name"), f"{n.name!r} is already the name of nodes[{seen[n.name]}]",
                          "give every node its own host name", n.name)
        seen[n.name] = i


@_check
def links(p: Profile) -> Iterator[Problem]:
    for i, n in enumerate(p.nodes):
        for kind, link in (("public", n.public), ("replication", n.replication)):
            if link.interface is None and link.mac is None:
                yield Problem(("nodes", i, kind), "has neither `interface` nor `mac`",
                              "give the interface name (e.g. eth0) or the NIC's MAC address")
        if n.public.interface and n.public.interface == n.replication.interface:
            yield Problem(("nodes", i, "replication", "interface"),
                          f"{n.replication.interface!r} is also the public interface",
                          "replication needs its own NIC (the back-to-back link)", n.replication.interface)


def _addresses(p: Profile) -> Iterator[tuple[tuple[str | int, ...], IPv4Interface]]:
    for i, n in enumerate(p.nodes):
        yield ("nodes", i, "public", "address"), n.public.address
        yield ("nodes", i, "replication", "address"), n.replication.address
    yield ("vip", "address"), p.vip.address


@_check
def unique_addresses(p: Profile) -> Iterator[Problem]:
    seen: dict[object, str] = {}
    for loc, addr in _addresses(p):
        if addr.ip in seen:
            yield Problem(loc, f"{addr.ip} is already used by {seen[addr.ip]}",
                          "every node address and the VIP must be distinct", str(addr))
        seen.setdefault(addr.ip, ".".join(str(x) for x in loc))
    macs: dict[str, str] = {}
    for i, n in enumerate(p.nodes):
        for kind, link in (("public", n.public), ("replication", n.replication)):
            if link.mac and link.mac in macs:
                yield Problem(("nodes", i, kind, "mac"), f"{link.mac} is already the MAC of {macs[link.mac]}",
                              "each NIC has its own MAC", link.mac)
            if link.mac:
                macs.setdefault(link.mac, f"nodes[{i}].{kind}")


def _same_subnet(p: Profile, kind: str) -> Iterator[Problem]:
    if not p.nodes:
        return
    first: IPv4Interface = getattr(p.nodes[0], kind).address
    for i, n in enumerate(p.nodes[1:], start=1):
        addr: IPv4Interface = getattr(n, kind).address
        if addr.network != first.network:
            yield Problem(("nodes", i, kind, "address"),
                          f"{addr} is not in the subnet of nodes[0].{kind}.address ({first.network})",
                          f"put both {kind} addresses in one subnet, e.g. an address in {first.network}",
                          str(addr))
    for i, n in enumerate(p.nodes):
        addr = getattr(n, kind).address
        if addr.ip in (addr.network.network_address, addr.network.broadcast_address) and addr.network.prefixlen < 31:
            yield Problem(("nodes", i, kind, "address"), f"{addr.ip} is the network or broadcast address of {addr.network}",
                          "use a host address", str(addr))


@_check
def subnets(p: Profile) -> Iterator[Problem]:
    yield from _same_subnet(p, "public")
    yield from _same_subnet(p, "replication")
    if not p.nodes:
        return
    public: IPv4Network = p.nodes[0].public.address.network
    replication: IPv4Network = p.nodes[0].replication.address.network
    if public.overlaps(replication):
        yield Problem(("nodes", 0, "replication", "address"),
                      f"the replication subnet {replication} overlaps the public subnet {public}",
                      "use a separate subnet for the back-to-back link, e.g. 10.1.1.0/24",
                      str(p.nodes[0].replication.address))
    vip = p.vip.address
    if vip.network != public:
        yield Problem(("vip", "address"), f"{vip} is not in the public subnet {public}",
                      f"choose a free address in {public} with the same prefix (/{public.prefixlen})", str(vip))
    elif vip.ip in (public.network_address, public.broadcast_address):
        yield Problem(("vip", "address"), f"{vip.ip} is the network or broadcast address of {public}",
                      "choose a host address", str(vip))
    for i, n in enumerate(p.nodes):
        if n.public.gateway and n.public.gateway not in n.public.address.network:
            yield Problem(("nodes", i, "public", "gateway"),
                          f"{n.public.gateway} is not in the node's public subnet {n.public.address.network}",
                          "use the LAN's router address", str(n.public.gateway))


@_check
def heartbeat_timing(p: Profile) -> Iterator[Problem]:
    hb = p.heartbeat
    if hb.warntime >= hb.deadtime:
        yield Problem(("heartbeat", "warntime"),
                      f"warntime {fmt(hb.warntime)} is not below deadtime {fmt(hb.deadtime)}",
                      "warntime must warn before the peer is declared dead: make it smaller than deadtime",
                      fmt(hb.warntime))
    if hb.deadtime < 2 * hb.keepalive:
        yield Problem(("heartbeat", "deadtime"),
                      f"deadtime {fmt(hb.deadtime)} is less than 2 x keepalive {fmt(hb.keepalive)}",
                      "one lost packet would declare the peer dead: make deadtime at least 2 x keepalive",
                      fmt(hb.deadtime))
    if hb.initdead < 2 * hb.deadtime:
        yield Problem(("heartbeat", "initdead"),
                      f"initdead {fmt(hb.initdead)} is less than 2 x deadtime {fmt(hb.deadtime)}",
                      "heartbeat needs boot slack: make initdead at least 2 x deadtime", fmt(hb.initdead))


@_check
def ports(p: Profile) -> Iterator[Problem]:
    tcp = {p.drbd.port: ("drbd", "port")}
    udp = {p.heartbeat.udpport: ("heartbeat", "udpport")}
    for i, s in enumerate(p.services):
        if s.probe and s.probe.tcp in tcp:
            yield Problem(("services", i, "probe", "tcp"), f"TCP port {s.probe.tcp} is DRBD's replication port",
                          "change drbd.port or the probe's port", s.probe.tcp)
        if s.probe and s.probe.udp_sip in udp:
            yield Problem(("services", i, "probe", "udp_sip"), f"UDP port {s.probe.udp_sip} is heartbeat's port",
                          "change heartbeat.udpport or the probe's port", s.probe.udp_sip)


@_check
def drbd(p: Profile) -> Iterator[Problem]:
    d = p.drbd
    mount = PurePosixPath(d.mount)
    for bad in FORBIDDEN_MOUNTS:
        if mount == PurePosixPath(bad) or mount.is_relative_to(bad):
            yield Problem(("drbd", "mount"), f"{d.mount} is under {bad}",
                          "mount the replicated filesystem elsewhere, e.g. /replica or /srv/replica", d.mount)
            break
    if len(mount.parts) < 2:
        yield Problem(("drbd", "mount"), "the mount point cannot be /", "use e.g. /replica", d.mount)
    names = {n.name for n in p.nodes}
    if d.backing.kind == "disk":
        for n in p.nodes:
            if n.name not in d.backing.disks:
                yield Problem(("drbd", "backing", "disks"), f"no disk given for node {n.name}",
                              f"add `{n.name}: /dev/disk/by-id/...`")
        for name in d.backing.disks:
            if name not in names:
                yield Problem(("drbd", "backing", "disks", name), f"{name!r} is not a node of this profile",
                              f"use one of: {', '.join(sorted(names))}", name)
    elif d.backing.disks:
        yield Problem(("drbd", "backing", "disks"), "disks are only used with kind: disk",
                      "set `kind: disk` or remove `disks`")


@_check
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
        names.setdefault(s.name, i)
        units.setdefault(s.unit, i)
    yield from _state_paths(p)


def _state_paths(p: Profile) -> Iterator[Problem]:
    mount = PurePosixPath(p.drbd.mount)
    seen: list[tuple[PurePosixPath, tuple[str | int, ...]]] = []
    for i, s in enumerate(p.services):
        for j, raw in enumerate(s.state):
            path, loc = PurePosixPath(raw), ("services", i, "state", j)
            if len(path.parts) < 3:
                yield Problem(loc, f"{raw} is a top-level directory",
                              "move a service's own directory, e.g. /var/lib/mysql, not a whole tree", raw)
            if path.is_relative_to(mount) or mount.is_relative_to(path):
                yield Problem(loc, f"{raw} overlaps the mount point {mount}",
                              "state paths are moved onto the mount point, not under or above it", raw)
            for other, oloc in seen:
                if path.is_relative_to(other) or other.is_relative_to(path):
                    where = ".".join(str(x) for x in oloc)
                    yield Problem(loc, f"{raw} overlaps {other} ({where})",
                                  "list each directory once, no directory inside another", raw)
            seen.append((path, loc))


@_check
def alerts(p: Profile) -> Iterator[Problem]:
    if not p.alerts:
        return
    for i, r in enumerate(p.alerts.recipients):
        if not EMAIL.match(r):
            yield Problem(("alerts", "recipients", i), f"{r!r} is not an email address",
                          "write it as name@domain", r)
    if not EMAIL.match(p.alerts.sender):
        yield Problem(("alerts", "sender"), f"{p.alerts.sender!r} is not an email address",
                      "write it as name@domain", p.alerts.sender)


@_check
def ssh_keys(p: Profile) -> Iterator[Problem]:
    for i, key in enumerate(p.ssh_authorized_keys):
        if not re.match(r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-\S+|sk-\S+) [A-Za-z0-9+/=]+( .*)?$", key):
            yield Problem(("ssh_authorized_keys", i), "is not an OpenSSH public key line",
                          "paste the line from ~/.ssh/id_ed25519.pub (ssh-ed25519 AAAA... comment)",
                          key[:20] + "...")
