"""Checks across nodes: names, links, addresses, gateways, ping nodes, timings, ports."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from builder.profile.checks import register
from builder.profile.model import Profile
from builder.profile.problems import Loc, Problem
from builder.profile.types import spell_duration as fmt


@register
def nodes(p: Profile) -> Iterator[Problem]:
    if p.cluster.stack == "heartbeat" and len(p.nodes) != 2:
        yield Problem(("nodes",), f"heartbeat clusters have exactly 2 nodes, this profile has {len(p.nodes)}",
                      "list two nodes, the preferred (master) one first")
    seen: dict[str, int] = {}
    for i, n in enumerate(p.nodes):
        if n.name in seen:
            yield Problem(("nodes", i, "name"), f"{n.name!r} is already the name of nodes[{seen[n.name]}]",
                          "give every node its own host name", n.name)
        if n.name in ("localhost", "localdomain") or n.name.startswith("localhost"):
            yield Problem(("nodes", i, "name"), f"{n.name!r} names every machine, not this node",
                          "give the node its own host name, e.g. kava1", n.name)
        seen[n.name] = i


@register
def links(p: Profile) -> Iterator[Problem]:
    for i, n in enumerate(p.nodes):
        for kind, link in (("public", n.public), ("replication", n.replication)):
            if link.interface is None and link.mac is None:
                yield Problem(("nodes", i, kind), "has neither `interface` nor `mac`",
                              "give the interface name (e.g. eth0) or the NIC's MAC address")
        public, replication = n.ifname("public"), n.ifname("replication")
        if public == replication:
            yield Problem(("nodes", i, "replication", "interface"),
                          f"{replication!r} is also the public interface",
                          "replication needs its own NIC (the back-to-back link): give it another name",
                          replication)


def _addresses(p: Profile) -> Iterator[tuple[tuple[str | int, ...], IPv4Interface]]:
    for i, n in enumerate(p.nodes):
        yield ("nodes", i, "public", "address"), n.public.address
        yield ("nodes", i, "replication", "address"), n.replication.address
    yield ("vip", "address"), p.vip.address


def _not_unicast(ip: IPv4Address) -> str | None:
    """Why ip cannot be a host's address on a LAN, or None."""
    if ip.is_loopback:
        return "a loopback address (127.0.0.0/8): it never leaves the machine"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified or ip in IPv4Network("0.0.0.0/8"):
        return "in 0.0.0.0/8 (this host, unspecified)"
    if ip.is_link_local:
        return "a link-local address (169.254.0.0/16): the kernel picks those itself"
    if ip == IPv4Address("255.255.255.255") or ip.is_reserved:
        return "a reserved or broadcast address"
    return None


@register
def unique_addresses(p: Profile) -> Iterator[Problem]:
    seen: dict[object, str] = {}
    for loc, addr in _addresses(p):
        why = _not_unicast(addr.ip)
        if why:
            yield Problem(loc, f"{addr} is {why}", "use a private LAN address, e.g. in 192.168.0.0/24", str(addr))
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
        if addr.network.prefixlen > 30 and kind == "public":
            yield Problem(("nodes", i, kind, "address"), f"{addr}: a /{addr.network.prefixlen} leaves no room "
                          "for the other node and the VIP", "use the LAN's real prefix, e.g. /24", str(addr))
        elif addr.ip in (addr.network.network_address, addr.network.broadcast_address) and addr.network.prefixlen < 31:
            yield Problem(("nodes", i, kind, "address"), f"{addr.ip} is the network or broadcast address of {addr.network}",
                          "use a host address", str(addr))


@register
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
    yield from _gateways(p)


def _gateways(p: Profile) -> Iterator[Problem]:
    own = _own(p)
    for i, n in enumerate(p.nodes):
        gw, net = n.public.gateway, n.public.address.network
        if gw is None:
            continue
        loc: Loc = ("nodes", i, "public", "gateway")
        if gw not in net:
            yield Problem(loc, f"{gw} is not in the node's public subnet {net}", "use the LAN's router address", str(gw))
        elif gw in (net.network_address, net.broadcast_address):
            yield Problem(loc, f"{gw} is the network or broadcast address of {net}", "use the LAN's router address",
                          str(gw))
        elif gw in own:
            yield Problem(loc, f"{gw} is {own[gw]}, not a router", "use the LAN's router address", str(gw))


def _own(p: Profile) -> dict[IPv4Address, str]:
    own = {n.public.address.ip: f"nodes[{i}].public.address" for i, n in enumerate(p.nodes)}
    own[p.vip.address.ip] = "the VIP (vip.address)"
    return own


@register
def dns_and_ping(p: Profile) -> Iterator[Problem]:
    for i, n in enumerate(p.nodes):
        for j, server in enumerate(n.public.dns):
            why = None if server.is_loopback else _not_unicast(server)
            if why:
                yield Problem(("nodes", i, "public", "dns", j), f"{server} is {why}", "use the LAN's DNS server",
                              str(server))
    gateway = p.nodes[0].public.gateway if p.nodes else None
    public = p.nodes[0].public.address.network if p.nodes else None
    own = _own(p)
    for j, target in enumerate(p.heartbeat.ping):
        loc: Loc = ("heartbeat", "ping", j)
        why = _not_unicast(target)
        if why:
            yield Problem(loc, f"{target} is {why}", "ping the LAN's router, e.g. the gateway", str(target))
        elif target in own:
            yield Problem(loc, f"{target} is {own[target]}: a node can always reach itself",
                          "ping something outside the cluster, e.g. the gateway", str(target))
        elif public is not None and target not in public and gateway is None:
            yield Problem(loc, f"{target} is outside the public subnet {public} and the nodes have no gateway",
                          "ping an address on the public LAN, or set nodes[].public.gateway", str(target))


@register
def heartbeat_timing(p: Profile) -> Iterator[Problem]:
    hb = p.heartbeat
    if hb.warntime <= hb.keepalive:
        yield Problem(("heartbeat", "warntime"),
                      f"warntime {fmt(hb.warntime)} is not above keepalive {fmt(hb.keepalive)}",
                      "every heartbeat would be late: make warntime a few keepalives long", fmt(hb.warntime))
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


@register
def ports(p: Profile) -> Iterator[Problem]:
    tcp: dict[int, tuple[str, str]] = {p.drbd.port: ("DRBD's replication port", "change drbd.port or the probe's port")}
    udp: dict[int, tuple[str, str]] = {p.heartbeat.udpport: ("heartbeat's port",
                                                             "change heartbeat.udpport or the probe's port")}
    for i, s in enumerate(p.services):
        if s.probe is None:
            continue
        for kind, port, used in (("tcp", s.probe.tcp, tcp), ("udp_sip", s.probe.udp_sip, udp)):
            if port is None:
                continue
            proto = "TCP" if kind == "tcp" else "UDP"
            if port in used:
                what, fix = used[port]
                yield Problem(("services", i, "probe", kind), f"{proto} port {port} is {what}", fix, port)
            else:
                used[port] = (f"already probed for services[{i}] ({s.name})",
                              "two services cannot listen on one port: give each its own")
