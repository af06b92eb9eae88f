"""Step "disk": find the DRBD backing device and make sure it is ours to use.

Only two contents are acceptable: nothing at all (fresh), or DRBD metadata (ours,
from an earlier run; the filesystem inside DRBD is then hidden behind it for
`blkid -p`). Anything else (a filesystem, a partition table, LVM, ...) is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from builder.node.config import Cluster, Node
from builder.node.context import Ctx
from builder.node.errors import NodeError, UnsafeError

log = logging.getLogger("clusterctl")

WAIT_S = 120.0

EMPTY = "empty"
DRBD = "drbd"


@dataclass(frozen=True)
class Probe:
    kind: str  # EMPTY, DRBD or "foreign"
    detail: dict[str, str]


def backing_path(cluster: Cluster, node: Node) -> str:
    b = cluster.drbd.backing
    if b.kind == "partition":
        return f"/dev/disk/by-partlabel/{b.partlabel}"
    return b.disks[node.name]


def probe(ctx: Ctx, device: str) -> Probe:
    """What `blkid -p` (low-level superblock probe, no cache) finds on `device`."""
    r = ctx.run(["blkid", "-p", "-o", "export", ctx.path(device)], check=False)
    if r.returncode == 2:  # blkid: nothing found
        return Probe(EMPTY, {})
    if not r.ok:
        raise NodeError(f"cannot probe {device}: blkid -p exit {r.returncode}: {r.output}")
    detail = dict(
        line.split("=", 1) for line in r.stdout.splitlines() if "=" in line and line[0] != "#"
    )
    # PART_ENTRY_* describe the partition's slot in its disk's table, not what
    # it holds: a fresh partition made by systemd-repart has only those.
    detail = {k: v for k, v in detail.items() if k != "DEVNAME" and not k.startswith("PART_ENTRY_")}
    if not detail:
        return Probe(EMPTY, {})
    if detail.get("TYPE") == "drbd" and "PTTYPE" not in detail:
        return Probe(DRBD, detail)
    return Probe("foreign", detail)


def find(ctx: Ctx, cluster: Cluster, node: Node) -> str:
    """Wait (bounded) for the backing device, check its content, return its path."""
    device = backing_path(cluster, node)
    ctx.run(["udevadm", "settle", "--timeout=30"], check=False)
    if not ctx.wait_until(f"{device} to appear", ctx.path(device).exists, WAIT_S):
        hint = (
            "systemd-repart makes it at boot from /usr/lib/repart.d: is there free space "
            "on the disk and did systemd-repart run?"
            if cluster.drbd.backing.kind == "partition"
            else "check drbd.backing.disks in the profile"
        )
        raise NodeError(f"DRBD backing device {device} did not appear in {WAIT_S:.0f} s; {hint}")
    found = probe(ctx, device)
    if found.kind == "foreign":
        listing = ctx.run(["wipefs", "--no-act", ctx.path(device)], check=False).output
        what = ", ".join(f"{k}={v}" for k, v in found.detail.items())
        raise UnsafeError(
            f"refusing to use {device} for DRBD: it holds data that is not ours ({what}).\n"
            f"{listing}\n"
            "If that data is really unwanted, wipe it by hand (wipefs -a) and reboot; "
            "nothing was changed."
        )
    log.info("backing device %s: %s", device, found.kind)
    return device
