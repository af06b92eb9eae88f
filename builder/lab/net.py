"""The lab's private network: one namespace holding two bridges, the taps and the client end.

Nothing here touches the host's network: every link lives inside the namespace,
and QEMU runs inside it too (never user-mode networking). The client end is the
public bridge's own address, so `ns.run(["curl", ...])` is a client on the LAN.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Interface

from builder.run import run


@dataclass(frozen=True)
class Tap:
    name: str  # <= 15 chars
    bridge: str
    mac: str


@dataclass(frozen=True)
class LabNetwork:
    namespace: str
    client: IPv4Interface  # the client end's address on the public bridge
    replication_probe: IPv4Interface  # the host side on the replication bridge (for link tests)
    taps: tuple[Tap, ...]
    extra: tuple[IPv4Interface, ...] = ()  # more client-end addresses (e.g. the mail relay)

    BRIDGES = ("br-pub", "br-repl")

    def exists(self) -> bool:
        return os.path.exists(f"/run/netns/{self.namespace}")

    def up(self) -> None:
        self.down()  # leftovers of a crashed run
        ns = self.namespace
        run(["ip", "netns", "add", ns])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        for bridge in self.BRIDGES:
            # No STP, no forward delay: the links are up as soon as the guests are.
            run(["ip", "-n", ns, "link", "add", bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"])
            run(["ip", "-n", ns, "link", "set", bridge, "up"])
        for address in (self.client, *self.extra):
            run(["ip", "-n", ns, "addr", "add", str(address), "dev", "br-pub"])
        run(["ip", "-n", ns, "addr", "add", str(self.replication_probe), "dev", "br-repl"])
        for tap in self.taps:
            run(["ip", "-n", ns, "tuntap", "add", "dev", tap.name, "mode", "tap"])
            run(["ip", "-n", ns, "link", "set", tap.name, "master", tap.bridge])
            run(["ip", "-n", ns, "link", "set", tap.name, "up"])

    def set_link(self, tap: str, up: bool) -> None:
        """Cut or restore one cable (the tap of one node's NIC)."""
        run(["ip", "-n", self.namespace, "link", "set", tap, "up" if up else "down"])

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float | None = 60) -> subprocess.CompletedProcess[str]:
        """Run a command on the client end (inside the namespace)."""
        return run(["ip", "netns", "exec", self.namespace, *argv], check=check, timeout=timeout)

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["ip", "netns", "exec", self.namespace, *argv], **kwargs)  # type: ignore[call-overload]

    def down(self) -> None:
        """Kill whatever still runs in the namespace, then delete it (taps and bridges go with it)."""
        if not self.exists():
            return
        pids = subprocess.run(["ip", "netns", "pids", self.namespace], capture_output=True, text=True).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pids and time.monotonic() < deadline:
            pids = subprocess.run(["ip", "netns", "pids", self.namespace], capture_output=True, text=True).stdout.split()
            time.sleep(0.2)
        run(["ip", "netns", "del", self.namespace])
