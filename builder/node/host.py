"""Step "host": hostname, /etc/hosts, static addresses (systemd-networkd), DNS, time sync."""

from __future__ import annotations

import logging
import os

from builder.node.config import Cluster, Link, Node
from builder.node.context import Ctx, atomic_write
from builder.node.errors import NodeError

log = logging.getLogger("clusterctl")

NETWORK_DIR = "/etc/systemd/network"
HOSTS_BEGIN = "# >>> cluster (managed by clusterctl from /etc/cluster/cluster.json) >>>"
HOSTS_END = "# <<< cluster <<<"


# After a reboot networkd applies the static addresses on its own schedule, and
# `drbdadm up` fails at once if the replication address is not there yet (seen in
# the lab: a resume after a power cut reached `up` before networkd had).
ADDRESS_WAIT_S = 120.0


def local_addresses(text: str) -> dict[str, str]:
    """`ip -o addr` output -> {address: interface}."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 4 and words[2] in ("inet", "inet6"):
            found[words[3].split("/")[0]] = words[1].rstrip(":").split("@")[0]
    return found


def wait_replication_address(ctx: Ctx, node: Node) -> None:
    """Wait (bounded) until the replication address DRBD binds is on its interface."""
    link = node.replication

    def present() -> bool:
        found = local_addresses(ctx.run(["ip", "-o", "addr", "show"], check=False).stdout)
        return found.get(str(link.address)) == link.interface

    if not ctx.wait_until(f"{link.address} on {link.interface}", present, ADDRESS_WAIT_S, 1.0):
        raise NodeError(f"the replication address {link.address} is not on {link.interface} after "
                        f"{ADDRESS_WAIT_S:.0f} s\nsee `networkctl status {link.interface}`; "
                        f"{network_path(link)} sets it")


def network_path(link: Link) -> str:
    return f"{NETWORK_DIR}/50-cluster-{link.interface}.network"


def render_network(link: Link, public: bool) -> str:
    lines = [
        "# Written by clusterctl from /etc/cluster/cluster.json.",
        "# The cluster's virtual IP is not configured here: heartbeat owns it.",
        "[Match]",
        f"Name={link.interface}",
        "",
        "[Network]",
        f"Address={link.address}/{link.prefix}",
    ]
    if public:
        if link.gateway:
            lines.append(f"Gateway={link.gateway}")
        lines += [f"DNS={d}" for d in link.dns]
        # Keep addresses networkd did not make (the VIP that heartbeat's IPaddr2 adds)
        # when networkd restarts or the link is reconfigured.
        lines.append("KeepConfiguration=static")
    else:
        # Back-to-back cable: no carrier while the peer is off, yet DRBD must be
        # able to bind its replication address.
        lines.append("ConfigureWithoutCarrier=yes")
    lines.append("")
    return "\n".join(lines)


def render_hosts(existing: str, cluster: Cluster) -> str:
    """Our block first (first match wins in /etc/hosts), other lines kept."""
    kept: list[str] = []
    inside = False
    for line in existing.splitlines():
        if line.strip() == HOSTS_BEGIN:
            inside = True
        elif line.strip() == HOSTS_END:
            inside = False
        elif not inside:
            kept.append(line)
    block = [HOSTS_BEGIN]
    block += [f"{n.public.address}\t{n.name}" for n in cluster.nodes]
    block += [f"{cluster.vip.address}\t{cluster.name}"]
    block.append(HOSTS_END)
    return "\n".join(block + kept) + "\n"


def render_resolv(link: Link) -> str:
    return ("# Written by clusterctl from /etc/cluster/cluster.json (the public link's dns).\n"
            + "".join(f"nameserver {d}\n" for d in link.dns))


def write_resolv(ctx: Ctx, link: Link) -> bool:
    """The node image has no systemd-resolved, so networkd's DNS= is read by nobody:
    glibc (and chrony resolving the time servers) reads /etc/resolv.conf. Where
    resolved is in charge (the file links into its run folder) DNS= reaches it.
    True when the file changed."""
    path = ctx.path("/etc/resolv.conf")
    if not link.dns or (path.is_symlink() and "/systemd/resolve/" in os.readlink(path)):
        return False
    return atomic_write(path, render_resolv(link))


def set_hostname(ctx: Ctx, name: str) -> None:
    atomic_write(ctx.path("/etc/hostname"), name + "\n")
    current = ctx.path("/proc/sys/kernel/hostname")
    if current.exists() and current.read_text().strip() == name:
        return
    # hostnamectl needs hostnamed (D-Bus); early at boot or without systemd use hostname(1).
    if not ctx.run(["hostnamectl", "set-hostname", name], check=False).ok:
        ctx.run(["hostname", name])


def apply(ctx: Ctx, cluster: Cluster, node: Node) -> None:
    set_hostname(ctx, node.name)

    hosts = ctx.path("/etc/hosts")
    existing = hosts.read_text() if hosts.exists() else ""
    atomic_write(hosts, render_hosts(existing, cluster))

    for link, public in ((node.public, True), (node.replication, False)):
        atomic_write(ctx.path(network_path(link)), render_network(link, public))
    dns_changed = write_resolv(ctx, node.public)
    # Always apply, even if the files were already there: a crash may have come
    # between writing them and the reload.
    ctx.run(["systemctl", "start", "systemd-networkd.service"])
    ctx.run(["networkctl", "reload"])
    for link in (node.public, node.replication):
        ctx.run(["networkctl", "reconfigure", link.interface])

    # The package ships the time servers (/etc/chrony/sources.d/cluster.sources).
    # chrony started at boot, before the DNS server was known, and may wait long
    # before it resolves the time servers' names again: restart it then.
    # Time sync matters for logs, not for correctness: warn, do not stop.
    verb = "restart" if dns_changed else "start"
    if not ctx.run(["systemctl", verb, "chrony.service"], check=False).ok:
        log.warning("could not start chrony.service: time is not synchronised")
