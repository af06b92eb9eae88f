"""DRBD 8.4: reading /proc/drbd and the few drbdadm actions provisioning needs.

State is read from /proc/drbd (the kernel's view, no fork while polling);
actions go through drbdadm and so through the runner.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from typing import Any

from builder.node.context import Ctx
from builder.node.errors import NodeError
from builder.node.runner import Result

log = logging.getLogger("clusterctl")

PROC_DRBD = "/proc/drbd"
NO_MD, CLEAN, UNCLEAN = "none", "clean", "unclean"  # what Drbdadm.metadata() finds
UNCLEAN_TEXT = 'Found meta data is "unclean"'  # drbdmeta dump-md, exit 1

# Connection states in which the peer is there (8.4 names).
CONNECTED = frozenset(
    {
        "Connected", "StartingSyncS", "StartingSyncT", "WFBitMapS", "WFBitMapT",
        "WFSyncUUID", "SyncSource", "SyncTarget", "PausedSyncS", "PausedSyncT",
        "VerifyS", "VerifyT",
    }
)

_MINOR = re.compile(r"^\s*(\d+):\s+cs:(\S+)(.*)$")
_FIELD = re.compile(r"\b(ro|ds):(\S+)/(\S+)")
_SYNCED = re.compile(r"sync'ed:\s*([\d.]+)%")


@dataclass
class MinorStatus:
    minor: int
    cs: str
    role: str = "Unknown"
    peer_role: str = "Unknown"
    disk: str = "Unknown"
    peer_disk: str = "Unknown"
    protocol: str | None = None
    flags: str | None = None
    sync_percent: float | None = None
    out_of_sync_kib: int | None = None

    @property
    def configured(self) -> bool:
        return self.cs != "Unconfigured"

    @property
    def connected(self) -> bool:
        return self.cs in CONNECTED

    @property
    def disks(self) -> str:
        return f"{self.disk}/{self.peer_disk}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "configured": self.configured, "connected": self.connected}


def parse_proc_drbd(text: str) -> dict[int, MinorStatus]:
    """Parse the 8.4 /proc/drbd format, e.g.
    ` 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----`
    followed by counter and (while syncing) progress lines."""
    minors: dict[int, MinorStatus] = {}
    current: MinorStatus | None = None
    for line in text.splitlines():
        m = _MINOR.match(line)
        if m:
            current = MinorStatus(int(m.group(1)), m.group(2))
            minors[current.minor] = current
            rest = m.group(3)
            for key, local, peer in _FIELD.findall(rest):
                if key == "ro":
                    current.role, current.peer_role = local, peer
                else:
                    current.disk, current.peer_disk = local, peer
            tail = _FIELD.sub("", rest).split()
            if tail:
                current.protocol = tail[0]
                current.flags = tail[1] if len(tail) > 1 else None
            continue
        if current is None:
            continue
        s = _SYNCED.search(line)
        if s:
            current.sync_percent = float(s.group(1))
        for word in line.split():
            if word.startswith("oos:") and word[4:].isdigit():
                current.out_of_sync_kib = int(word[4:])
    return minors


def status(ctx: Ctx, minor: int) -> MinorStatus:
    """The minor's state; `cs:Unconfigured` when it is not up or DRBD is not loaded."""
    try:
        text = ctx.path(PROC_DRBD).read_text()
    except FileNotFoundError:
        return MinorStatus(minor, "Unconfigured")
    return parse_proc_drbd(text).get(minor) or MinorStatus(minor, "Unconfigured")


class Drbdadm:
    """drbdadm for one resource. `prefix` lets an integration test add `-c <conf>`."""

    def __init__(self, ctx: Ctx, resource: str, minor: int, prefix: tuple[str, ...] = ("drbdadm",)):
        self.ctx = ctx
        self.resource = resource
        self.minor = minor
        self.prefix = prefix

    def run(self, *args: str, check: bool = True) -> Result:
        return self.ctx.run([*self.prefix, *args, self.resource], check=check)

    def status(self) -> MinorStatus:
        return status(self.ctx, self.minor)

    def metadata(self) -> str:
        """The honest test: drbdmeta itself (via `drbdadm dump-md`) says whether
        metadata exists: NO_MD, CLEAN, or UNCLEAN (it exists; the 8.4 kernel leaves
        it so whenever it was attached: after power loss, even after a clean down).
        Unknown answers stop provisioning rather than risk a create-md over data."""
        if self.status().configured:
            return CLEAN  # attached: metadata exists and is in use
        r = self.run("dump-md", check=False)
        if r.ok:
            return CLEAN
        if UNCLEAN_TEXT in r.output:
            return UNCLEAN
        if "No valid meta data found" in r.output:
            return NO_MD
        raise NodeError(
            f"cannot tell whether {self.resource} has DRBD metadata "
            f"(drbdadm dump-md exit {r.returncode}): {r.output}"
        )

    def has_metadata(self) -> bool:
        return self.metadata() != NO_MD

    def apply_al(self) -> None:
        """Replay the activity log into the bitmap and mark the metadata clean:
        the documented step after a crash (drbdadm up does it too, on 8.4)."""
        log.warning("%s: metadata is unclean (power lost while DRBD was up): applying the activity log",
                    self.resource)
        self.run("apply-al")

    def up(self) -> None:
        if not self.status().configured:
            self.run("up")
