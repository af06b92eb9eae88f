"""A fake runner and a small simulated node (DRBD 8.4 pair, disks, systemd).

The runner records every argv and answers from a simulated world, so the
provisioning logic is tested against state that evolves like the real thing:
metadata and filesystems persist across a simulated reboot, up/role/mounts do
not. Only cp and mv really run (on the temp tree), through the real runner.
Every answer the agent interprets (exit code and text) comes from
fixtures/tool-answers.json: recorded from the real tools, or read in their
source where they cannot run here. The world only picks which one applies.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.node.context import Ctx
from builder.node.runner import CommandError, Result, SubprocessRunner

from .tool_answers import answer

PASSTHROUGH = {"cp", "mv"}  # really run on the temp tree
DESTRUCTIVE = ("create-md", "clear-bitmap", "primary --force", "mkfs")


class PowerLoss(BaseException):
    """Not an Exception: nothing in the agent may catch it, as with a real power cut."""


def cluster_doc(**drbd_overrides: Any) -> dict[str, Any]:
    def link(iface: str, mac: str, addr: str, gw: str | None, dns: list[str]) -> dict[str, Any]:
        return {"interface": iface, "mac": mac, "address": addr, "prefix": 24,
                "gateway": gw, "dns": dns}

    drbd = {
        "resource": "r0", "device": "/dev/drbd0", "minor": 0, "port": 7788,
        "backing": {"kind": "partition", "partlabel": "drbd-r0", "size_bytes": 1 << 30,
                    "disks": {}},
        "filesystem": "ext4", "mount": "/replica", "peer_timeout_s": 300,
    }
    drbd.update(drbd_overrides)
    return {
        "format": 1,
        "cluster": {"name": "pbx-ha", "stack": "heartbeat", "release": "trixie",
                    "version": "1.0"},
        "nodes": [
            {"name": "kava1", "preferred": True,
             "public": link("lan0", "52:54:00:0a:00:01", "192.168.0.100", "192.168.0.1",
                            ["192.168.0.1"]),
             "replication": link("repl0", "52:54:00:0b:00:01", "10.1.1.1", None, [])},
            {"name": "kava2", "preferred": False,
             "public": link("lan0", "52:54:00:0a:00:02", "192.168.0.101", "192.168.0.1",
                            ["192.168.0.1"]),
             "replication": link("repl0", "52:54:00:0b:00:02", "10.1.1.2", None, [])},
        ],
        "vip": {"address": "192.168.0.105", "prefix": 24, "interface": "lan0"},
        "drbd": drbd,
        "heartbeat": {"keepalive_ms": 500, "deadtime_ms": 4000, "initdead_ms": 30000,
                      "auto_failback": True},
        "services": [
            {"name": "mariadb", "unit": "mariadb.service", "state": ["/var/lib/mysql"],
             "probe": {"tcp": 3306}},
            {"name": "kamailio", "unit": "kamailio.service", "state": [],
             "probe": {"udp_sip": 5060}},
            {"name": "apache2", "unit": "apache2.service",
             "state": ["/var/www/html", "/etc/apache2/sites-enabled"], "probe": {"tcp": 80}},
        ],
        "alerts": None,
        "time_servers": ["2.debian.pool.ntp.org"],
        "paths": {"state_dir": "/var/lib/cluster", "msmtprc": "/etc/cluster/msmtprc"},
    }


@dataclass
class Peer:
    """The other node as seen over the replication link."""

    present: bool = True
    disk: str = "Inconsistent"
    role: str = "Secondary"
    # Non-preferred tests: the preferred peer's timeline after we first connect.
    promotes_after: float | None = None  # clears the bitmap and becomes primary
    leaves_after: float | None = None  # goes down (hands over to heartbeat)
    returns_as_primary: bool = True  # reconnects later, running under heartbeat


@dataclass
class World:
    root: Path
    name: str = "kava1"
    peer: Peer = field(default_factory=Peer)
    # persistent (on disk)
    md: bool = False
    # The 8.4 kernel writes DRBD_MD_MAGIC_84_UNCLEAN whenever it writes the
    # superblock, so once attached the on-disk metadata stays "unclean" (also
    # after a clean down, and after power loss) until drbdmeta apply-al.
    md_clean: bool = True
    disk: str = "Diskless"
    fs: str | None = None
    backing_foreign: str | None = None  # e.g. "ext4": someone else's data
    # volatile
    up: bool = False
    role: str = "Secondary"
    mounted: bool = False
    # 8.4 attach (fencing resource-only): UpToDate-on-disk data comes up
    # Consistent until a peer is seen (drbd_nl.c: D_CONSISTENT unless the peer is outdated).
    consistent_only: bool = False
    now: float = 1000.0
    first_connect: float | None = None
    units: dict[str, str] = field(default_factory=dict)
    not_installed: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    ip_addr: str = ""
    # After a boot networkd applies its files on its own schedule: the first this
    # many `ip` calls of a boot see no address yet (the lab's resume after a power cut).
    networkd_late_by: int = 0
    ip_calls: int = 0

    BACKING = "/dev/disk/by-partlabel/drbd-r0"
    DEVICE = "/dev/drbd0"
    MOUNT = "/replica"

    # -- setup --------------------------------------------------------------

    def install(self, doc: dict[str, Any] | None = None, cmdline: str = "") -> None:
        r = self.root
        (r / "etc/cluster").mkdir(parents=True)
        (r / "etc/cluster/cluster.json").write_text(json.dumps(doc or cluster_doc()))
        (r / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n")
        (r / "proc/sys/kernel").mkdir(parents=True)
        (r / "proc/sys/kernel/hostname").write_text("debian\n")
        (r / "proc/cmdline").write_text(f"BOOT_IMAGE=/vmlinuz root=/dev/vda2 ro {cmdline}\n")
        dev = r / self.BACKING.lstrip("/")
        dev.parent.mkdir(parents=True)
        dev.write_text("")
        (r / "var/lib/mysql/mysql").mkdir(parents=True)
        (r / "var/lib/mysql/ibdata1").write_text("innodb")
        (r / "var/www/html").mkdir(parents=True)
        (r / "var/www/html/index.html").write_text("<h1>it works</h1>")
        (r / "etc/apache2/sites-enabled").mkdir(parents=True)
        (r / "etc/apache2/sites-enabled/000-default.conf").write_text("<VirtualHost *:80>")
        self.store.mkdir(parents=True)
        self.write_proc()

    @property
    def store(self) -> Path:
        """Where the replicated filesystem's files live while it is not mounted."""
        return self.root.parent / f"{self.root.name}-drbd-fs"

    def reboot(self) -> None:
        if self.mounted:
            self._umount()
        self.up = False
        self.role = "Secondary"
        self.consistent_only = False
        self.units.clear()
        self.ip_calls = 0
        self.write_proc()

    # -- DRBD model -----------------------------------------------------------

    def connected(self) -> bool:
        p = self.peer
        if not (self.up and p.present):
            return False
        if self.first_connect is None:
            return True
        since = self.now - self.first_connect
        if p.leaves_after is not None and since >= p.leaves_after:
            return p.returns_as_primary and since >= p.leaves_after + 600
        return True

    def _advance_peer(self) -> None:
        p = self.peer
        if not self.up or not p.present:
            return
        if self.first_connect is None:
            self.first_connect = self.now
        since = self.now - self.first_connect
        if p.promotes_after is not None and since >= p.promotes_after and p.role != "Primary":
            if self.disk == p.disk == "Inconsistent":
                self.disk = p.disk = "UpToDate"
            p.role = "Primary"
        if p.leaves_after is not None and since >= p.leaves_after + 600 and p.returns_as_primary:
            p.role, p.disk = "Primary", "UpToDate"
            if self.disk != "UpToDate":
                self.disk = "UpToDate"  # the sync from the running peer finished

    def write_proc(self) -> None:
        self._advance_peer()
        lines = ["version: 8.4.11 (api:1/proto:86-101)", "srcversion: 0123456789ABCDEF"]
        if self.up:
            if self.connected():
                self.consistent_only = False  # the handshake settles who is UpToDate
                cs, peer_role, peer_disk = "Connected", self.peer.role, self.peer.disk
            else:
                cs, peer_role, peer_disk = "WFConnection", "Unknown", "DUnknown"
            disk = "Consistent" if self.consistent_only else self.disk
            lines.append(
                f" 0: cs:{cs} ro:{self.role}/{peer_role} ds:{disk}/{peer_disk} C r-----"
            )
            lines.append("    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0")
        path = self.root / "proc/drbd"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.write_proc()

    def clock(self) -> float:
        return self.now

    def _mount(self) -> None:
        mnt = self.root / self.MOUNT.lstrip("/")
        if any(mnt.iterdir()):
            self.violations.append("mount over a non-empty directory")
        mnt.rmdir()
        self.store.rename(mnt)
        self.mounted = True

    def _umount(self) -> None:
        mnt = self.root / self.MOUNT.lstrip("/")
        mnt.rename(self.store)
        mnt.mkdir()
        self.mounted = False

    # -- commands -----------------------------------------------------------

    def host_path(self, p: str) -> str:
        r = str(self.root)
        return "/" + p[len(r):].lstrip("/") if p.startswith(r) else p

    def respond(self, argv: tuple[str, ...]) -> Result:
        a = [self.host_path(x) for x in argv]
        ok = Result(argv, 0)

        def fail(msg: str, rc: int = 1) -> Result:
            return Result(argv, rc, "", msg)

        tool = a[0]
        if tool == "drbdadm":
            return self._drbdadm(argv, a[1:-1], a[-1])
        if tool == "blkid":
            return self._blkid(argv, a[-1])
        if tool == "wipefs":
            if self.backing_foreign:  # someone else's data: any signature will do
                return Result(argv, 0, f"{self.backing_foreign}\n" + ("drbd\n" if self.md else ""))
            key = "wipefs/empty" if not self.md else "wipefs/drbd-ext4" if self.fs else "wipefs/drbd"
            return answer(argv, key)
        if tool.startswith("mkfs."):
            if self.role != "Primary":
                return fail("mkfs: cannot open /dev/drbd0: Wrong medium type")
            if self.fs:
                self.violations.append("mkfs over an existing filesystem")
            self.fs = tool.split(".", 1)[1]
            for child in self.store.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
            return ok
        if tool == "mountpoint":
            return answer(argv, "mountpoint/yes" if self.mounted and a[-1] == self.MOUNT else "mountpoint/no")
        if tool in ("mount", "umount"):
            return self._mount_cmd(argv, tool, a[-2] if tool == "mount" else "", a[-1])
        if tool == "systemctl":
            return self._systemctl(argv, a[1], a[-1])
        if tool == "hostnamectl":
            (self.root / "proc/sys/kernel/hostname").write_text(a[-1] + "\n")
            return ok
        if tool == "ip":
            self.ip_calls += 1
            late = self.ip_calls <= self.networkd_late_by
            return Result(argv, 0, self.ip_addr or ("" if late else self._networkd_addresses()))
        if tool in ("udevadm", "networkctl", "hostname", "sync"):
            return ok
        return fail(f"{tool}: not simulated", 127)

    def _networkd_addresses(self) -> str:
        """What `ip -o addr show` lists once networkd applied the files the host step wrote
        (format as iproute2 prints it); nothing before that."""
        lines = []
        for i, path in enumerate(sorted((self.root / "etc/systemd/network").glob("*.network")), start=2):
            text = path.read_text()
            name = next((ln.split("=", 1)[1] for ln in text.splitlines() if ln.startswith("Name=")), None)
            addr = next((ln.split("=", 1)[1] for ln in text.splitlines() if ln.startswith("Address=")), None)
            if name and addr:
                lines.append(f"{i}: {name}    inet {addr} scope global {name}\\       valid_lft forever")
        return "\n".join(lines) + ("\n" if lines else "")

    def _drbdadm(self, argv: tuple[str, ...], args: list[str], res: str) -> Result:
        cmd = " ".join(args)
        names = {"res": res, "minor": "0", "dev": self.BACKING, "cmd": args[0] if args else ""}

        def say(key: str) -> Result:
            return answer(argv, key, **names)

        if res != "r0":
            return Result(argv, 10, "", f"'{res}' not defined in your config")
        if cmd == "dump-md":  # reads the disk even while attached (it modifies nothing)
            return say("dump-md/none" if not self.md else "dump-md/clean" if self.md_clean else "dump-md/unclean")
        if cmd in ("create-md", "apply-al") and self.up:
            return say(f"{cmd}/attached")
        if cmd == "create-md":
            if self.md:  # drbdmeta asks first; the runner's empty stdin answers no
                self.violations.append("create-md over existing metadata")
                return say("create-md/existing" if self.md_clean else "create-md/unclean")
            self.md, self.md_clean, self.disk, self.fs = True, True, "Inconsistent", None
            return say("create-md/empty")
        if cmd == "apply-al":
            if not self.md:
                return say("apply-al/none")
            key = "apply-al/clean" if self.md_clean else "apply-al/unclean"
            self.md_clean = True
            return say(key)
        if cmd == "up":
            if self.up:
                self.violations.append("up while up")
                return Result(argv, 10, "", "0: Failure: (161) Minor or volume exists already")
            if not self.md:
                return say("up/no-md")
            self.up, self.md_clean = True, False  # apply-al, then the kernel writes 84_UNCLEAN
            self.consistent_only = self.disk == "UpToDate" and not self.connected()
            return say("up/ok")
        if not self.up:
            return say("not-up/minor")
        return self._drbd_state_change(cmd, say)

    def _drbd_state_change(self, cmd: str, say: Callable[[str], Result]) -> Result:
        if cmd == "new-current-uuid --clear-bitmap":
            if not (self.connected() and self.disk == self.peer.disk == "Inconsistent"):
                self.violations.append("clear-bitmap outside a fresh connected pair")
            self.disk = self.peer.disk = "UpToDate"
            return say("new-current-uuid/ok")
        if cmd in ("primary", "primary --force"):
            if self.connected() and self.peer.role == "Primary":
                return say("primary/peer-primary")
            if cmd == "primary" and (self.disk != "UpToDate" or self.consistent_only):
                return say("primary/not-uptodate")  # no dopd yet to outdate the peer
            if cmd == "primary --force":
                if self.name != "kava1":
                    self.violations.append("primary --force on the non-preferred node")
                if self.connected():
                    self.violations.append("primary --force with the peer connected")
                self.disk, self.consistent_only = "UpToDate", False
            self.role = "Primary"
            return say("primary/ok")
        if cmd in ("secondary", "down"):
            if self.mounted:
                return say(f"{cmd}/held-open")
            if cmd == "down":
                self.up = False
            self.role = "Secondary"
            return say(f"{cmd}/ok")
        return Result((), 20, "", f"drbdadm {cmd}: not simulated")

    def _blkid(self, argv: tuple[str, ...], dev: str) -> Result:
        if dev == self.BACKING:
            if self.md:
                return answer(argv, "blkid/drbd-ext4" if self.fs else "blkid/drbd", dev=dev, uuid="3e74f3e42b936dd4")
            if self.backing_foreign:
                return Result(argv, 0, f"DEVNAME={dev}\nTYPE={self.backing_foreign}\n")
            return answer(argv, "blkid/empty")
        if dev == self.DEVICE:
            if self.role != "Primary":
                return answer(argv, "blkid/drbd-secondary")
            return answer(argv, "blkid/ext4", dev=dev, uuid="5a1d0c2e") if self.fs else answer(argv, "blkid/empty")
        return Result(argv, 2)

    def _mount_cmd(self, argv: tuple[str, ...], tool: str, dev: str, mnt: str) -> Result:
        names = {"dev": dev or self.DEVICE, "mount": mnt}
        if tool == "umount":
            if not self.mounted:
                return answer(argv, "umount/not-mounted", **names)
            self._umount()
            return answer(argv, "umount/ok")
        if self.mounted:
            return answer(argv, "mount/already", **names)
        if self.role != "Primary" or not self.fs:
            return answer(argv, "mount/no-fs", **names)
        self._mount()
        return answer(argv, "mount/ok")

    def _systemctl(self, argv: tuple[str, ...], verb: str, unit: str) -> Result:
        if verb == "is-active":
            state = self.units.get(unit, "inactive")
            if state == "active":
                return answer(argv, "systemctl/is-active-active")
            return answer(argv, "systemctl/is-active-not-active", state=state)
        if verb == "stop" and unit in self.not_installed:
            return answer(argv, "systemctl/stop-not-loaded", unit=unit)
        if verb in ("start", "restart"):
            self.units[unit] = "active"
        elif verb == "stop":
            self.units[unit] = "inactive"
        return answer(argv, "systemctl/ok")


class FakeRunner:
    """Records calls; answers from a World (or scripted results); can cut the power."""

    def __init__(self, world: World | None = None) -> None:
        self.world = world
        self.calls: list[tuple[str, ...]] = []
        self.scripted: list[tuple[tuple[str, ...], Callable[[tuple[str, ...]], Result]]] = []
        self.crash_at: int | None = None
        self.crash_after = True  # power lost just after the command took effect
        self.executed = 0
        self.cut: tuple[str, ...] = ()  # the command at which the power was cut
        self.real = SubprocessRunner()

    def script(self, *prefix: str, rc: int = 0, out: str = "", err: str = "") -> None:
        self.scripted.insert(0, (prefix, lambda argv: Result(argv, rc, out, err)))

    def __call__(
        self,
        argv: Any,
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float | None = None,
    ) -> Result:
        argv = tuple(str(a) for a in argv)
        index = self.executed
        self.executed += 1
        if self.crash_at == index:
            self.cut = argv
        if self.crash_at == index and not self.crash_after:
            raise PowerLoss(f"before {argv}")
        self.calls.append(argv)
        result = self._respond(argv, check=False, input=input, timeout=timeout)
        if self.world is not None:
            self.world.write_proc()
        if self.crash_at == index and self.crash_after:
            raise PowerLoss(f"after {argv}")
        if check and not result.ok:
            raise CommandError(result)
        return result

    def _respond(self, argv: tuple[str, ...], **kw: Any) -> Result:
        for prefix, fn in self.scripted:
            if argv[: len(prefix)] == prefix:
                return fn(argv)
        if argv[0] in PASSTHROUGH:
            return self.real(argv, **kw)
        if self.world is None:
            return Result(argv, 0)
        return self.world.respond(argv)

    def acting(self) -> list[tuple[str, ...]]:
        """The calls that act on the node: all but telling the journal (logger)."""
        return [c for c in self.calls if c[0] != "logger"]

    def commands(self, *prefix: str) -> list[tuple[str, ...]]:
        return [c for c in self.calls if c[: len(prefix)] == prefix]

    def destructive(self) -> dict[str, int]:
        counts = dict.fromkeys(DESTRUCTIVE, 0)
        for c in self.calls:
            text = " ".join(c)
            if c[0] == "drbdadm" and "create-md" in c:
                counts["create-md"] += 1
            elif "--clear-bitmap" in c:
                counts["clear-bitmap"] += 1
            elif c[0] == "drbdadm" and "primary" in c and "--force" in c:
                counts["primary --force"] += 1
            elif text.startswith("mkfs"):
                counts["mkfs"] += 1
        return counts


def make_ctx(world: World, runner: FakeRunner, hook: Callable[[str], None] | None = None) -> Ctx:
    ctx = Ctx(runner=runner, root=world.root, env={}, sleep=world.sleep, clock=world.clock)
    if hook is not None:
        ctx.hook = hook
    return ctx


def snapshot(root: Path) -> dict[str, Any]:
    """Everything observable in a tree: type, mode, owner, link target, content."""
    out: dict[str, Any] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        st = p.lstat()
        if p.is_symlink():
            out[rel] = ("link", str(p.readlink()))
        elif p.is_dir():
            out[rel] = ("dir", oct(st.st_mode), st.st_uid)
        else:
            data = p.read_bytes()
            if rel.endswith("state.json"):
                doc = json.loads(data)
                doc.pop("updated", None)
                data = json.dumps(doc, sort_keys=True).encode()
            out[rel] = ("file", oct(st.st_mode), st.st_uid, data)
    return out


def world_state(world: World) -> dict[str, Any]:
    keep = ("md", "md_clean", "disk", "fs", "up", "role", "mounted", "violations")
    return {k: copy.deepcopy(getattr(world, k)) for k in keep} | {
        "peer_disk": world.peer.disk, "tree": snapshot(world.root),
        "replica": snapshot(world.store) if world.store.exists() else None,
    }
