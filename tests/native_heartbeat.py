"""heartbeat with the rendered configuration, natively: no VMs, seconds not minutes.

Each node is a network namespace (its links are veth pairs named like the
profile's interfaces) plus private UTS and mount namespaces, so the real
heartbeat daemon runs with the node's host name, our ha.cf and authkeys, and its
own /run and /var/lib/heartbeat. haresources is cut down to the VIP (there is no
DRBD or MariaDB here): this proves membership, timing and IP takeover; the VM
lab proves the rest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from builder.errors import BuilderError
from builder.profile.model import Profile, ifname
from builder.run import run
from builder.staging import Tree

NODE_SCRIPT = """
set -e
hostname "$1"
mount -t tmpfs tmpfs /run
mkdir -p /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd /run/crm /run/resource-agents
chown -R hacluster:haclient /run/heartbeat /run/crm
mount --bind "$2/ha.d" /etc/ha.d
mount --bind "$2/varlib" /var/lib/heartbeat
exec /usr/libexec/heartbeat/heartbeat -f
"""


@dataclass
class NativeNode:
    name: str
    namespace: str
    folder: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.folder / "ha-log"

    def holds(self, address: str) -> bool:
        out = subprocess.run(["ip", "-n", self.namespace, "-o", "addr", "show"], capture_output=True, text=True).stdout
        return f" {address}/" in out


class NativeCluster:
    def __init__(self, profile: Profile, tree: Tree, workdir: Path) -> None:
        self.profile = profile
        self.tree = tree
        self.workdir = workdir
        tag = f"{os.getpid() % 100000}"
        self.nodes = [NativeNode(n.name, f"hbn{tag}-{i}", workdir / n.name) for i, n in enumerate(profile.nodes)]
        self.vip = str(profile.vip.address.ip)

    def _prepare(self, node: NativeNode) -> None:
        shutil.rmtree(node.folder, ignore_errors=True)
        shutil.copytree("/etc/ha.d", node.folder / "ha.d", symlinks=True)
        shutil.copytree("/var/lib/heartbeat", node.folder / "varlib", symlinks=True)
        for name in ("ha.cf", "authkeys"):
            f = self.tree.get(f"/etc/ha.d/{name}")
            (node.folder / "ha.d" / name).write_bytes(f.data)
            os.chmod(node.folder / "ha.d" / name, f.mode)
        with open(node.folder / "ha.d" / "ha.cf", "a") as cf:
            cf.write(f"logfile {node.log}\n")
        vip = self.profile.vip.address
        iface = ifname(self.profile.preferred.public, "public")
        (node.folder / "ha.d" / "haresources").write_text(
            f"{self.profile.preferred.name} IPaddr2::{vip.ip}/{vip.network.prefixlen}/{iface}\n")

    def up(self) -> None:
        self.down()
        a, b = self.nodes
        pa, pb = self.profile.nodes
        for node in self.nodes:
            run(["ip", "netns", "add", node.namespace])
        # One veth pair per link: a back-to-back cable, named as on the nodes.
        for kind in ("public", "replication"):
            name_a, name_b = ifname(getattr(pa, kind), kind), ifname(getattr(pb, kind), kind)
            run(["ip", "link", "add", name_a, "netns", a.namespace, "type", "veth",
                 "peer", "name", name_b, "netns", b.namespace])
            for node, prof, name in ((a, pa, name_a), (b, pb, name_b)):
                run(["ip", "-n", node.namespace, "addr", "add", str(getattr(prof, kind).address), "dev", name])
                run(["ip", "-n", node.namespace, "link", "set", name, "up"])
        for node in self.nodes:
            run(["ip", "-n", node.namespace, "link", "set", "lo", "up"])
            self.start(node)

    def start(self, node: NativeNode) -> None:
        if not (node.folder / "ha.d").exists():
            self._prepare(node)
        out = open(node.folder / "stdout", "ab")  # noqa: SIM115 - the daemon keeps writing to it
        node.proc = subprocess.Popen(
            ["ip", "netns", "exec", node.namespace, "unshare", "--uts", "--mount", "sh", "-c", NODE_SCRIPT,
             "node", node.name, str(node.folder)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()

    def kill(self, node: NativeNode) -> float:
        """kill -9 every process of the node: a power cut. Returns the monotonic time."""
        t = time.monotonic()
        pids = subprocess.run(["ip", "netns", "pids", node.namespace], capture_output=True, text=True).stdout.split()
        for pid in pids:
            subprocess.run(["kill", "-9", pid], capture_output=True)
        if node.proc:
            node.proc.wait()
        # IPaddr2 left the VIP on the dead node's interface; a rebooted node starts clean.
        run(["ip", "-n", node.namespace, "addr", "flush", "dev", ifname(self.profile.preferred.public, "public"),
             "to", f"{self.vip}/32"], check=False)
        return t

    def wait_for(self, node: NativeNode, timeout: float, every: float = 0.05) -> float:
        """Seconds until `node` holds the VIP."""
        t0 = time.monotonic()
        while not node.holds(self.vip):
            if time.monotonic() - t0 > timeout:
                logs = "\n".join(n.log.read_text(errors="replace")[-1500:] for n in self.nodes if n.log.exists())
                raise BuilderError(f"{node.name} did not take the VIP {self.vip} within {timeout:.0f} s\n{logs}")
            time.sleep(every)
        return time.monotonic() - t0

    def down(self) -> None:
        for node in self.nodes:
            if Path(f"/run/netns/{node.namespace}").exists():
                self.kill(node)
                run(["ip", "netns", "del", node.namespace], check=False)


def failover_figures(cluster: NativeCluster) -> dict[str, float]:
    """Boot both, kill -9 the preferred node, bring it back: the seconds each step took."""
    preferred, peer = cluster.nodes
    hb = cluster.profile.heartbeat
    t0 = time.monotonic()
    cluster.up()
    cluster.wait_for(preferred, timeout=hb.initdead / 1000 + 60)
    ready = time.monotonic() - t0
    time.sleep(4 * hb.keepalive / 1000)  # both have seen each other's heartbeats
    killed = cluster.kill(preferred)
    cluster.wait_for(peer, timeout=hb.deadtime / 1000 + 60)
    failover = time.monotonic() - killed
    cluster.start(preferred)
    failback = cluster.wait_for(preferred, timeout=hb.initdead / 1000 + 60)
    return {"ready_s": round(ready, 2), "failover_s": round(failover, 2), "failback_s": round(failback, 2)}
