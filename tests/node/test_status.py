from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.node import cli, probes, status
from builder.node.config import Probe

from .fakes import FakeRunner, World, cluster_doc, make_ctx

IP_ADDR = """\
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: lan0    inet 192.168.0.100/24 brd 192.168.0.255 scope global lan0\\       valid_lft forever
2: lan0    inet 192.168.0.105/24 brd 192.168.0.255 scope global secondary lan0\\       valid_lft forever
3: repl0    inet 10.1.1.1/24 brd 10.1.1.255 scope global repl0\\       valid_lft forever
3: repl0    inet6 fe80::5054:ff:fe0b:1/64 scope link \\       valid_lft forever
"""


@pytest.fixture
def tcp_port() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def sip_port() -> Iterator[int]:
    """A minimal SIP UAS: answers the first OPTIONS with 200 OK."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    got: list[bytes] = []

    def serve() -> None:
        try:
            data, addr = s.recvfrom(65535)
        except OSError:
            return
        got.append(data)
        s.sendto(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", addr)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield s.getsockname()[1]
    t.join(5)
    s.close()
    assert got and got[0].startswith(b"OPTIONS sip:127.0.0.1:")
    assert b"\r\nCSeq: 1 OPTIONS\r\n" in got[0] and got[0].endswith(b"\r\n\r\n")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status_world(tmp_path: Path, tcp: int, sip: int) -> World:
    doc = cluster_doc()
    doc["services"][0]["probe"] = {"tcp": tcp}
    doc["services"][1]["probe"] = {"udp_sip": sip}
    doc["services"][2]["probe"] = {"command": ["apache2ctl", "status"]}
    w = World(tmp_path / "root")
    w.install(doc)
    w.md = w.up = True
    w.role, w.disk, w.peer.disk = "Primary", "UpToDate", "UpToDate"
    w.write_proc()
    w.ip_addr = IP_ADDR
    w.units.update({"heartbeat.service": "active", "mariadb.service": "active",
                    "kamailio.service": "active", "apache2.service": "failed"})
    state = w.root / "var/lib/cluster/state.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"format": 1, "node": "kava1",
                                 "done": ["identity", "host", "disk", "drbd", "services"]}))
    return w


def test_status_json(tmp_path: Path, tcp_port: int, sip_port: int,
                     capsys: pytest.CaptureFixture[str]) -> None:
    world = status_world(tmp_path, tcp_port, sip_port)
    runner = FakeRunner(world)
    runner.script("apache2ctl", rc=1, err="apache2 is not running")
    runner.script("chronyc", out="Reference ID    : C0A80001 (192.168.0.1)\nLeap status     : Normal\n")
    assert cli.main(["status", "--json"], ctx=make_ctx(world, runner)) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report) == ["format", "node", "provision", "drbd", "heartbeat", "vip", "services", "time", "health"]
    assert report["time"] == {"synchronised": True, "source": "192.168.0.1", "how": "chrony leap status Normal"}
    assert report["node"] == {"name": "kava1", "source": "state file", "preferred": True,
                              "cluster": "pbx-ha"}
    assert report["provision"]["complete"] is True and report["provision"]["next"] is None
    d = report["drbd"]
    assert (d["cs"], d["role"], d["peer_role"], d["disk"], d["peer_disk"]) == (
        "Connected", "Primary", "Secondary", "UpToDate", "UpToDate")
    assert report["heartbeat"] == {"running": True, "state": "active"}
    assert report["vip"] == {"address": "192.168.0.105", "held_here": True, "interface": "lan0"}
    svcs = {s["name"]: s for s in report["services"]["services"]}
    assert svcs["mariadb"]["state"] == "active" and svcs["mariadb"]["probe"]["ok"] is True
    assert svcs["kamailio"]["probe"]["ok"] is True
    assert "SIP/2.0 200 OK" in svcs["kamailio"]["probe"]["detail"]
    assert svcs["apache2"]["state"] == "failed"
    assert svcs["apache2"]["probe"] == {"kind": "command", "ok": False, "detail": "exit 1"}


def test_status_text_on_an_unprovisioned_passive_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World(tmp_path / "root")
    world.install(cmdline="cluster.node=kava2")
    world.ip_addr = IP_ADDR.replace("192.168.0.105", "192.168.0.99")
    assert cli.main(["status"], ctx=make_ctx(world, FakeRunner(world))) == 0
    out = capsys.readouterr().out
    assert "node: name=kava2  source=kernel command line cluster.node=  preferred=no" in out
    assert "provision: complete=no  failed=no  done=[]  next=identity" in out
    assert "drbd: resource=r0" in out and "cs=Unconfigured" in out
    assert "vip: address=192.168.0.105  held_here=no" in out
    assert "mariadb" in out


def test_a_later_module_adds_a_section_and_a_broken_one_is_contained(tmp_path: Path) -> None:
    world = World(tmp_path / "root")
    world.install()
    before = list(status.SECTIONS)
    try:
        status.register("alerts", lambda ctx, cluster: {"pending": 0})
        status.register("broken", lambda ctx, cluster: {"x": 1 / 0})
        from builder.node import config

        report = status.collect(make_ctx(world, FakeRunner(world)),
                                config.parse(cluster_doc()))
    finally:
        status.SECTIONS[:] = before
    assert report["alerts"] == {"pending": 0}
    assert report["broken"] == {"error": "ZeroDivisionError: division by zero"}
    assert "services" in report


def test_probes_report_failures(tmp_path: Path) -> None:
    closed = free_udp_port()
    assert not probes.udp_sip("127.0.0.1", closed, timeout=0.5).ok
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connection refused
        assert not probes.tcp("127.0.0.1", port).ok
    world = World(tmp_path / "root")
    world.install()
    ctx = make_ctx(world, FakeRunner(world))
    assert probes.run(ctx, Probe("command", argv=("true",))).ok is False  # not simulated: 127


def test_local_addresses_parser() -> None:
    addrs = status.local_addresses(IP_ADDR)
    assert addrs["192.168.0.105"] == "lan0" and addrs["fe80::5054:ff:fe0b:1"] == "repl0"
