"""`clusterctl health`: read the cluster's own signals into named conditions.

A condition is something wrong (or in progress) right now: a stable key, a
severity and a human message. No condition means healthy. Deciding what to
announce (and when) is events.py's job; this module only looks.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.node import drbd, identity, probes, status
from builder.node.config import Cluster
from builder.node.context import Ctx
from builder.node.errors import NodeError
from builder.node.provision import load_state

CRITICAL, WARNING, INFO = "critical", "warning", "info"
SEVERITIES = (CRITICAL, WARNING, INFO)  # most severe first
MIN_FREE = 0.10  # warn below 10 % free on the replicated filesystem
SYNCING = frozenset({"SyncSource", "SyncTarget", "PausedSyncS", "PausedSyncT",
                     "StartingSyncS", "StartingSyncT", "WFBitMapS", "WFBitMapT", "WFSyncUUID"})
_LEAP = re.compile(r"^Leap status\s*:\s*(.+)$", re.MULTILINE)
_REFERENCE = re.compile(r"^Reference ID\s*:\s*\S+\s*\(([^)]*)\)", re.MULTILINE)


@dataclass(frozen=True)
class Condition:
    key: str
    severity: str
    message: str
    cleared: str = ""  # the event when it clears; default "recovered: <message>"
    shared: bool = False  # both nodes see it (link, DRBD connection): only the reporter mails it

    @property
    def recovered(self) -> str:
        return self.cleared or f"recovered: {self.message}"


@dataclass
class Reading:
    node: str
    conditions: list[Condition]
    holder: bool  # the VIP is on this node (= it runs the resources)
    drbd_connected: bool
    reporter: bool = True  # this node mails the shared conditions (see reports_shared)
    vip_elsewhere: bool = False  # not here, but the VIP answers: the peer runs the resources


def node_name(ctx: Ctx, cluster: Cluster) -> str:
    st = load_state(ctx, cluster)
    return st.node or identity.resolve(ctx, cluster).name


def ping(ctx: Ctx, address: str) -> bool:
    return ctx.run(["ping", "-c1", "-W1", "-n", "-q", address], check=False).ok


def peer_links(ctx: Ctx, cluster: Cluster, me: str) -> list[Condition]:
    peer = cluster.peer(me)
    out = []
    for link, addr in (("replication", peer.replication.address), ("public", peer.public.address)):
        if not ping(ctx, addr):
            out.append(Condition(f"peer.{link}", WARNING,
                                 f"peer {peer.name} lost on {link} link (no reply from {addr})",
                                 f"recovered: peer {peer.name} reachable on {link} link", shared=True))
    return out


def kernel_split_brain(ctx: Ctx, cluster: Cluster) -> bool:
    """DRBD logs "Split-Brain detected but unresolved, dropping connection!" when
    the after-sb policies give up; the resource then sits in StandAlone."""
    r = ctx.run(["journalctl", "-k", "-b", "-q", "-o", "cat", "--no-pager", "--grep", "Split-Brain detected"],
                check=False)
    names = (f"drbd{cluster.drbd.minor}:", f"{cluster.drbd.resource}:")
    return any("unresolved" in line and any(n in line for n in names) for line in r.stdout.splitlines())


def drbd_conditions(ctx: Ctx, cluster: Cluster, st: drbd.MinorStatus, holder: bool,
                    seen_connected: bool) -> list[Condition]:
    res = cluster.drbd.resource
    out: list[Condition] = []
    if not st.configured:
        return [Condition("drbd.connection", CRITICAL, f"DRBD {res} is not up (Unconfigured)",
                          f"recovered: DRBD {res} is up")]
    if st.cs == "StandAlone":
        # With after-sb policies 8.4 drops to StandAlone on split-brain; any other
        # road there (drbdadm disconnect) after a connection is worth the same alarm.
        if seen_connected or kernel_split_brain(ctx, cluster):
            out.append(Condition("drbd.split-brain", CRITICAL, f"split-brain detected on {res}",
                                 f"recovered: {res} reconnected after split-brain", shared=True))
        else:
            out.append(Condition("drbd.connection", CRITICAL,
                                 f"DRBD {res} disconnected (StandAlone: not trying to reconnect)",
                                 f"recovered: DRBD {res} connected", shared=True))
    elif not st.connected:
        out.append(Condition("drbd.connection", WARNING, f"DRBD {res} disconnected ({st.cs})",
                             f"recovered: DRBD {res} connected", shared=True))
    if st.cs in SYNCING:
        done = f", {st.sync_percent:.1f}%" if st.sync_percent is not None else ""
        out.append(Condition("drbd.resync", INFO, f"DRBD {res} resyncing ({st.cs}{done})",
                             f"resync finished on {res}", shared=True))
    elif st.disk != "UpToDate":
        sev = CRITICAL if st.role == "Primary" or st.disk in ("Diskless", "Failed") else WARNING
        # Outdated is the peer's fencing at a disconnect (dopd), part of the holder's
        # "disconnected" mail; Inconsistent/Diskless/Failed are this node's own trouble.
        out.append(Condition("drbd.disk", sev, f"DRBD {res} local disk is {st.disk}",
                             f"recovered: DRBD {res} local disk UpToDate", shared=st.disk == "Outdated"))
    elif st.connected and st.peer_disk != "UpToDate":
        out.append(Condition("drbd.peer-disk", WARNING, f"DRBD {res} peer disk is {st.peer_disk}",
                             f"recovered: DRBD {res} peer disk UpToDate", shared=True))
    if st.role == "Primary" and st.peer_role == "Primary":
        out.append(Condition("drbd.roles", CRITICAL, f"both nodes are Primary on {res}", shared=True))
    elif holder and st.role != "Primary":
        out.append(Condition("drbd.roles", CRITICAL, f"VIP held here but {res} is {st.role}"))
    elif not holder and st.role == "Primary":
        out.append(Condition("drbd.roles", WARNING, f"{res} is Primary here but the VIP is not"))
    elif st.connected and st.role == st.peer_role == "Secondary":
        out.append(Condition("drbd.roles", CRITICAL, f"no node is Primary on {res}: resources are down",
                             shared=True))
    return out


def heartbeat_condition(ctx: Ctx, me: str) -> list[Condition]:
    r = ctx.run(["systemctl", "is-active", "heartbeat.service"], check=False)
    state = r.stdout.strip() or f"exit {r.returncode}"
    if state == "active":
        return []
    return [Condition("heartbeat", CRITICAL, f"heartbeat not running on {me} ({state})",
                      f"recovered: heartbeat running on {me}")]


def free_fraction(path: Path) -> tuple[float, int]:
    """(free fraction, free bytes) as an unprivileged writer sees them."""
    s = os.statvfs(path)
    return (s.f_bavail / s.f_blocks if s.f_blocks else 0.0), s.f_bavail * s.f_frsize


def active_conditions(ctx: Ctx, cluster: Cluster) -> list[Condition]:
    """What only the node running the resources can check: mount, space, services."""
    out: list[Condition] = []
    mount = cluster.drbd.mount
    if not ctx.run(["mountpoint", "-q", mount], check=False).ok:
        out.append(Condition("fs.mount", CRITICAL, f"{mount} is not mounted on the active node"))
    else:
        frac, free = free_fraction(ctx.path(mount))
        if frac < MIN_FREE:
            out.append(Condition("fs.space", WARNING,
                                 f"low space on {mount}: {frac:.0%} free ({free / 2**30:.1f} GiB)",
                                 f"recovered: space on {mount} back above {MIN_FREE:.0%}"))
    for svc in cluster.services:
        if svc.probe is None:
            continue
        res = probes.run(ctx, svc.probe)
        if not res.ok:
            out.append(Condition(f"service.{svc.name}", CRITICAL,
                                 f"service {svc.name} unhealthy: {res.detail}",
                                 f"recovered: service {svc.name} healthy"))
    return out


def clock(ctx: Ctx) -> dict[str, Any]:
    """Is the clock synchronised, to which server, and how we know: chrony's
    tracking, else timedatectl (a node whose admin swapped chrony out)."""
    r = ctx.run(["chronyc", "-n", "tracking"], check=False)
    m = _LEAP.search(r.stdout) if r.ok else None
    if m:
        leap = m.group(1).strip()
        synced = leap != "Not synchronised"
        ref = _REFERENCE.search(r.stdout)
        return {"synchronised": synced, "source": ref.group(1) if synced and ref else None,
                "how": f"chrony leap status {leap}"}
    r = ctx.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"], check=False)
    answer = r.stdout.strip()
    if not r.ok or answer not in ("yes", "no"):
        return {"synchronised": None, "source": None, "how": "chronyc and timedatectl gave no answer"}
    return {"synchronised": answer == "yes", "source": None, "how": f"timedatectl NTPSynchronized={answer}"}


def time_condition(ctx: Ctx) -> list[Condition]:
    c = clock(ctx)
    if c["synchronised"] is None:
        return [Condition("time", WARNING, f"cannot tell whether the clock is synchronised ({c['how']})",
                          "recovered: clock sync readable")]
    if c["synchronised"]:
        return []
    return [Condition("time", WARNING, f"clock not synchronised ({c['how']})", "recovered: clock synchronised")]


def partner_condition(cluster: Cluster, me: str, partner: str, st: drbd.MinorStatus) -> Condition:
    """This node's partner never finished its first boot (provision.start gave up
    waiting) and no node has run the services since. This node does not force:
    heartbeat here takes the resources only if DRBD lets it (UpToDate data)."""
    return Condition(
        "peer.firstboot", CRITICAL,
        f"{partner} never finished its first boot (no DRBD connection within {cluster.drbd.peer_timeout_s} s "
        f"of {me}'s, no node has run the services since); {me} has {st.disk} data and takes over only with "
        f"UpToDate data: see clusterctl status on {partner}",
        f"recovered: the cluster runs (VIP answers): {partner}'s first boot is over")


def check(ctx: Ctx, cluster: Cluster, me: str, seen_connected: bool = False,
          partner_pending: str | None = None) -> Reading:
    """One look at everything. `seen_connected`: DRBD was connected earlier in this
    boot, so a StandAlone now means the connection was dropped (split-brain).
    `partner_pending`: the partner that never finished its first boot (events.run)."""
    vip = status.vip_section(ctx, cluster)
    holder = bool(vip["held_here"])
    st = drbd.status(ctx, cluster.drbd.minor)
    conds = peer_links(ctx, cluster, me)
    vip_elsewhere = not holder and ping(ctx, vip["address"])
    if partner_pending and not holder and not vip_elsewhere:
        conds.insert(0, partner_condition(cluster, me, partner_pending, st))  # first: it names the cause
    if not holder and not conds and not vip_elsewhere:
        # The peer answers but nobody answers for the VIP: no node runs the resources.
        conds.append(Condition("vip", CRITICAL, f"VIP {vip['address']} not held by any node",
                               f"recovered: VIP {vip['address']} answers", shared=True))
    conds += drbd_conditions(ctx, cluster, st, holder, seen_connected)
    conds += heartbeat_condition(ctx, me)
    if holder:
        conds += active_conditions(ctx, cluster)
    conds += time_condition(ctx)
    return Reading(me, conds, holder, st.connected, reports_shared(holder, conds), vip_elsewhere)


def reports_shared(holder: bool, conds: list[Condition]) -> bool:
    """Both nodes see a cut link or a DRBD disconnect; one mail is enough. The
    VIP holder reports them; the standby only when the holder cannot be counted
    on: the peer is gone from the public LAN (the relay's side) or nobody holds
    the VIP."""
    return holder or any(c.key in ("peer.public", "vip") for c in conds)


def provisioned(ctx: Ctx, cluster: Cluster) -> bool:
    try:
        return load_state(ctx, cluster).complete
    except NodeError:
        return False
