"""Health signals -> conditions, on a simulated node (fake runner, fake /proc/drbd)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from builder.node import config, events, health
from builder.node.probes import ProbeResult
from builder.node.runner import Result
from builder.node.state import STEPS

from .fakes import FakeRunner, World, cluster_doc, make_ctx

VIP_LINE = "2: lan0    inet 192.168.0.105/24 brd 192.168.0.255 scope global secondary lan0\n"
LEAP_OK = "Reference ID    : C0A80001 (192.168.0.1)\nStratum         : 3\nLeap status     : Normal\n"
CONNECTED = ("Connected", "Primary/Secondary", "UpToDate/UpToDate")


@dataclass
class Node:
    """One node for health tests: every signal is a field the test flips."""

    world: World
    runner: FakeRunner
    name: str
    doc: dict[str, Any]
    down: set[str] = field(default_factory=set)  # addresses that do not answer ping
    failing: dict[str, str] = field(default_factory=dict)  # service -> probe detail
    probed: list[str] = field(default_factory=list)
    free: float = 0.5
    leap: str = LEAP_OK
    kernel_log: str = ""
    sent: list[tuple[str, str]] = field(default_factory=list)  # (subject, body) per mail

    @property
    def ctx(self) -> Any:
        return make_ctx(self.world, self.runner)

    @property
    def cluster(self) -> config.Cluster:
        return config.parse(self.doc)

    def drbd(self, cs: str, ro: str, ds: str, extra: str = "") -> None:
        text = f"version: 8.4.11 (api:1/proto:86-101)\n 0: cs:{cs} ro:{ro} ds:{ds} C r-----\n{extra}"
        (self.world.root / "proc/drbd").write_text(text)

    def holds_vip(self, yes: bool) -> None:
        self.world.ip_addr = VIP_LINE if yes else ""

    def reboot(self, boot_id: str) -> None:
        (self.world.root / "proc/sys/kernel/random/boot_id").write_text(boot_id + "\n")

    def run(self, minutes: float = 1) -> list[str]:
        """One cron run, `minutes` after the previous one; the texts of its events."""
        self.world.now += minutes * 60

        def send(ctx: Any, a: Any, subject: str, body: str) -> Any:
            self.sent.append((subject, body))
            return events.mail.Sent(True)

        return [e.text for e in events.run(self.ctx, self.cluster, send=send).events]

    def state(self) -> dict[str, Any]:
        return json.loads((self.world.root / "var/lib/cluster/health.json").read_text())


def make_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "kava1",
              active: bool = True, alerts: dict[str, Any] | None = None) -> Node:
    doc = cluster_doc()
    doc["alerts"] = alerts
    world = World(tmp_path / name, name=name)
    world.install(doc)
    world.write_proc = lambda: None  # type: ignore[method-assign]  # tests write /proc/drbd
    (world.root / "replica").mkdir()
    world.mounted = active
    world.units["heartbeat.service"] = "active"
    state = world.root / "var/lib/cluster/state.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"format": 1, "node": name, "done": list(STEPS)}))
    runner = FakeRunner(world)
    node = Node(world, runner, name, doc)
    (world.root / "proc/sys/kernel/random").mkdir(parents=True)
    node.reboot("boot-1")
    node.holds_vip(active)
    node.drbd(*CONNECTED) if active else node.drbd("Connected", "Secondary/Primary", "UpToDate/UpToDate")
    runner.scripted += [
        (("ping",), lambda argv: Result(argv, 1 if argv[-1] in node.down else 0)),
        (("chronyc",), lambda argv: Result(argv, 0, node.leap)),
        (("journalctl",), lambda argv: Result(argv, 0, node.kernel_log)),
        (("logger",), lambda argv: Result(argv, 0)),
    ]

    def probe(ctx: Any, p: Any, host: str = "127.0.0.1") -> ProbeResult:
        svc = next(s.name for s in node.cluster.services if s.probe == p)
        node.probed.append(svc)
        detail = node.failing.get(svc)
        return ProbeResult(detail is None, detail or "ok")

    monkeypatch.setattr(health.probes, "run", probe)
    monkeypatch.setattr(health, "free_fraction", lambda path: (node.free, int(node.free * 2**31)))
    return node


def conditions(node: Node) -> dict[str, str]:
    reading = health.check(node.ctx, node.cluster, node.name)
    return {c.key: c.message for c in reading.conditions}


def test_a_healthy_active_node_has_no_conditions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = make_node(tmp_path, monkeypatch)
    assert conditions(node) == {}
    assert sorted(node.probed) == ["apache2", "kamailio", "mariadb"]
    pings = [c[-1] for c in node.runner.commands("ping")]
    assert pings == ["10.1.1.2", "192.168.0.101"]  # both links; the VIP is here, no ping for it


def test_a_healthy_standby_probes_no_service_but_checks_the_vip(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = make_node(tmp_path, monkeypatch, "kava2", active=False)
    assert conditions(node) == {}
    assert node.probed == []
    assert node.runner.commands("mountpoint") == []
    assert [c[-1] for c in node.runner.commands("ping")][-1] == "192.168.0.105"


def test_each_signal_names_its_condition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = make_node(tmp_path, monkeypatch)
    node.down = {"10.1.1.2"}
    node.failing = {"mariadb": "tcp 127.0.0.1:3306: Connection refused"}
    node.free = 0.05
    node.leap = "Leap status     : Not synchronised\n"
    node.world.units["heartbeat.service"] = "inactive"
    node.drbd("WFConnection", "Primary/Unknown", "UpToDate/DUnknown")
    assert conditions(node) == {
        "peer.replication": "peer kava2 lost on replication link (no reply from 10.1.1.2)",
        "drbd.connection": "DRBD r0 disconnected (WFConnection)",
        "heartbeat": "heartbeat not running on kava1 (inactive)",
        "service.mariadb": "service mariadb unhealthy: tcp 127.0.0.1:3306: Connection refused",
        "fs.space": "low space on /replica: 5% free (0.1 GiB)",
        "time": "clock not synchronised (chrony leap status Not synchronised)",
    }


@pytest.mark.parametrize(("proc", "key", "message"), [
    (("StandAlone", "Primary/Unknown", "UpToDate/DUnknown"), "drbd.connection",
     "DRBD r0 disconnected (StandAlone: not trying to reconnect)"),
    (("Connected", "Primary/Secondary", "UpToDate/Outdated"), "drbd.peer-disk", "DRBD r0 peer disk is Outdated"),
    (("Connected", "Primary/Secondary", "Inconsistent/UpToDate"), "drbd.disk",
     "DRBD r0 local disk is Inconsistent"),
    (("SyncSource", "Primary/Secondary", "UpToDate/Inconsistent"), "drbd.resync",
     "DRBD r0 resyncing (SyncSource, 42.5%)"),
    (("Connected", "Secondary/Secondary", "UpToDate/UpToDate"), "drbd.roles", "VIP held here but r0 is Secondary"),
    (("Connected", "Primary/Primary", "UpToDate/UpToDate"), "drbd.roles", "both nodes are Primary on r0"),
])
def test_drbd_states(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proc: tuple[str, str, str],
                     key: str, message: str) -> None:
    node = make_node(tmp_path, monkeypatch)
    node.drbd(*proc, extra="\t[=====>..............] sync'ed: 42.5% (300/512)M\n")
    assert conditions(node) == {key: message}


def test_split_brain_from_the_kernel_log_even_without_history(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = make_node(tmp_path, monkeypatch)
    node.drbd("StandAlone", "Primary/Unknown", "UpToDate/DUnknown")
    node.kernel_log = "block drbd0: Split-Brain detected but unresolved, dropping connection!\n"
    assert conditions(node) == {"drbd.split-brain": "split-brain detected on r0"}


def test_split_brain_from_standalone_after_a_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = make_node(tmp_path, monkeypatch)
    node.drbd("StandAlone", "Primary/Unknown", "UpToDate/DUnknown")
    reading = health.check(node.ctx, node.cluster, node.name, seen_connected=True)
    assert [c.message for c in reading.conditions] == ["split-brain detected on r0"]


def test_nobody_holds_the_vip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = make_node(tmp_path, monkeypatch, "kava2", active=False)
    node.down = {"192.168.0.105"}
    assert conditions(node) == {"vip": "VIP 192.168.0.105 not held by any node"}
    node.down = {"192.168.0.105", "192.168.0.100"}  # peer gone too: the peer condition says enough
    assert conditions(node) == {"peer.public": "peer kava1 lost on public link (no reply from 192.168.0.100)"}


def test_active_node_without_its_mount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = make_node(tmp_path, monkeypatch)
    node.world.mounted = False
    assert conditions(node) == {"fs.mount": "/replica is not mounted on the active node"}


def test_time_falls_back_to_timedatectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = make_node(tmp_path, monkeypatch)
    node.runner.script("chronyc", rc=127, err="chronyc: command not found")
    node.runner.script("timedatectl", out="no\n")
    assert conditions(node) == {"time": "clock not synchronised (timedatectl NTPSynchronized=no)"}
    node.runner.script("timedatectl", out="yes\n")
    assert conditions(node) == {}


def test_clock_names_the_server_it_follows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = make_node(tmp_path, monkeypatch)
    assert health.clock(node.ctx) == {"synchronised": True, "source": "192.168.0.1",
                                      "how": "chrony leap status Normal"}
    node.leap = "Reference ID    : 00000000 ()\nLeap status     : Not synchronised\n"
    assert health.clock(node.ctx)["synchronised"] is False and health.clock(node.ctx)["source"] is None
