"""The lab's cast: a Cluster of two Nodes on a LabNetwork, built from the profile.

Scenarios read like stories over these: `cluster.up()`, `node.status()`,
`poll(lambda: cluster.vip_holder() == peer, "the peer holds the VIP")`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

from builder.lab import clients
from builder.lab.net import LabNetwork, Tap
from builder.lab.site import Site, site_plan
from builder.lab.vm import Vm, VmSpec
from builder.profile.model import Profile
from builder.profile.secrets import Secrets


def client_address(profile: Profile) -> IPv4Interface:
    """A free address on the public LAN for the client end: the highest unused host."""
    net = profile.vip.address.network
    used = {profile.vip.address.ip} | {n.public.address.ip for n in profile.nodes}
    used |= {n.public.gateway for n in profile.nodes if n.public.gateway}
    relay = relay_address(profile)
    if relay:
        used.add(relay.ip)
    used |= {a.ip for a in site_plan(profile).addresses}
    for host in reversed(list(net.hosts())):
        if host not in used:
            return IPv4Interface(f"{host}/{net.prefixlen}")
    raise ValueError(f"no free address in {net}")


def relay_address(profile: Profile) -> IPv4Interface | None:
    """The alert relay, when the profile puts it on the public LAN: the lab plays it."""
    if not profile.alerts:
        return None
    net = profile.vip.address.network
    try:
        ip = IPv4Interface(f"{profile.alerts.smtp.host}/{net.prefixlen}")
    except ValueError:
        return None
    return ip if ip.network == net else None


def replication_probe_address(profile: Profile) -> IPv4Interface:
    net = profile.nodes[0].replication.address.network
    used = {n.replication.address.ip for n in profile.nodes}
    host = next(h for h in reversed(list(net.hosts())) if h not in used)
    return IPv4Interface(f"{host}/{net.prefixlen}")


@dataclass
class Node:
    name: str
    vm: Vm
    taps: dict[str, str]  # link kind -> tap
    clock_offset: float = 0.0  # guest clock - host clock (s)

    def status(self) -> dict[str, Any]:
        t0 = time.time()
        answer = self.vm.ask("status")
        t1 = time.time()
        if "time" in answer:
            self.clock_offset = answer["time"] - (t0 + t1) / 2
        return answer.get("status", answer)

    def journal(self, unit: str, since: float, verb: str = "journal") -> list[tuple[float, str]]:
        """(host-clock time, message) of a unit's journal lines since a host-clock time;
        verb "grep": every journal line holding the word `unit` instead."""
        answer = self.vm.ask(f"{verb} {unit} {since + self.clock_offset:.3f}", timeout=60)
        return [(t - self.clock_offset, msg) for t, msg in answer.get("lines", [])]


class Cluster:
    def __init__(self, profile: Profile, secrets: Secrets, image: Path, workdir: Path, accel: str = "tcg") -> None:
        self.profile = profile
        self.secrets = secrets
        self.accel = accel
        self.vip = str(profile.vip.address.ip)
        per_node: list[dict[str, Tap]] = []
        for i, n in enumerate(profile.nodes):
            per_node.append({})
            for kind, bridge in (("public", "br-pub"), ("replication", "br-repl")):
                mac = getattr(n, kind).mac or f"52:54:00:{0xa0 + i:02x}:{0 if kind == 'public' else 1:02x}:01"
                per_node[i][kind] = Tap(f"t{i}{kind[0]}", bridge, mac)
        relay = relay_address(profile)
        plan = site_plan(profile)
        self.net = LabNetwork(f"blab-{profile.cluster.name}"[:15], client_address(profile),
                              replication_probe_address(profile),
                              tuple(t for taps in per_node for t in taps.values()),
                              extra=tuple(dict.fromkeys([*([relay] if relay else []), *plan.addresses])))
        self.site = Site(self.net, plan, workdir / "site")
        self.mail = (clients.MailSink(self.net, str(relay.ip), profile.alerts.smtp.port, workdir / "mail.jsonl")
                     if relay and profile.alerts else None)
        self.nodes = [
            Node(n.name, Vm(VmSpec(n.name, image, workdir / n.name, [(t.name, t.mac) for t in taps.values()],
                                   credentials={"cluster.node": n.name, "cluster.status-port": "/dev/ttyS1"},
                                   accel=accel), self.net),
                 {kind: t.name for kind, t in taps.items()})
            for n, taps in zip(profile.nodes, per_node, strict=True)
        ]

    @property
    def preferred(self) -> Node:
        return self.nodes[0]

    @property
    def peer(self) -> Node:
        return self.nodes[1]

    def up(self) -> None:
        self.net.up()
        self.site.start()
        if self.mail:
            self.mail.start()
        for node in self.nodes:
            node.vm.start()

    def down(self) -> None:
        self.site.stop()
        if self.mail:
            self.mail.stop()
        for node in self.nodes:
            if node.vm:
                node.vm.stop()
        self.net.down()

    def vip_holder(self) -> Node | None:
        """Who answers ARP for the VIP on the LAN, by MAC, as a switch would see it."""
        self.net.run(["ip", "neigh", "flush", "to", self.vip], check=False)
        self.net.run(["ping", "-c", "1", "-W", "1", self.vip], check=False, timeout=10)
        out = self.net.run(["ip", "neigh", "show", self.vip], check=False).stdout.split()
        mac = out[out.index("lladdr") + 1] if "lladdr" in out else None
        for node in self.nodes:
            if mac and mac == node.vm.spec.nics[0][1]:
                return node
        return None
