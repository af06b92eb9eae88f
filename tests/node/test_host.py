from __future__ import annotations

import configparser

from builder.node import host
from builder.node.config import Cluster
from builder.node.context import Ctx

from .fakes import FakeRunner, World


def test_network_files(world: World, ctx: Ctx, runner: FakeRunner, cluster: Cluster) -> None:
    host.apply(ctx, cluster, cluster.node("kava2"))
    lan = (world.root / "etc/systemd/network/50-cluster-lan0.network").read_text()
    repl = (world.root / "etc/systemd/network/50-cluster-repl0.network").read_text()
    p = configparser.ConfigParser(strict=True)
    p.optionxform = str  # type: ignore[assignment,method-assign]
    p.read_string(lan)
    assert dict(p["Match"]) == {"Name": "lan0"}
    assert p["Network"]["Address"] == "192.168.0.101/24"
    assert p["Network"]["Gateway"] == "192.168.0.1"
    assert p["Network"]["DNS"] == "192.168.0.1"
    assert "192.168.0.105" not in lan  # the VIP belongs to heartbeat
    p = configparser.ConfigParser(strict=True)
    p.optionxform = str  # type: ignore[assignment,method-assign]
    p.read_string(repl)
    assert p["Network"]["Address"] == "10.1.1.2/24"
    assert "Gateway" not in p["Network"] and "DNS" not in p["Network"]
    assert runner.commands("networkctl") == [
        ("networkctl", "reload"), ("networkctl", "reconfigure", "lan0"),
        ("networkctl", "reconfigure", "repl0")]


def test_hostname_and_hosts_block(world: World, ctx: Ctx, runner: FakeRunner,
                                  cluster: Cluster) -> None:
    (world.root / "etc/hosts").write_text(
        "127.0.0.1\tlocalhost\n# BEGIN site\n10.9.9.9 backup-server\n")
    host.apply(ctx, cluster, cluster.node("kava1"))
    assert (world.root / "etc/hostname").read_text() == "kava1\n"
    assert ("hostnamectl", "set-hostname", "kava1") in runner.calls
    hosts = (world.root / "etc/hosts").read_text()
    lines = hosts.splitlines()
    assert lines[:5] == [host.HOSTS_BEGIN, "192.168.0.100\tkava1", "192.168.0.101\tkava2",
                         "192.168.0.105\tpbx-ha", host.HOSTS_END]
    assert lines[5:] == ["127.0.0.1\tlocalhost", "# BEGIN site", "10.9.9.9 backup-server"]
    # again: the same file, the block not duplicated, the hostname not set twice
    runner.calls.clear()
    host.apply(ctx, cluster, cluster.node("kava1"))
    assert (world.root / "etc/hosts").read_text() == hosts
    assert not runner.commands("hostnamectl")


def test_hostname_falls_back_when_hostnamectl_fails(
    world: World, ctx: Ctx, runner: FakeRunner, cluster: Cluster
) -> None:
    runner.script("hostnamectl", rc=1, err="Failed to connect to bus")
    host.set_hostname(ctx, "kava2")
    assert runner.calls[-1] == ("hostname", "kava2")


def test_chrony_started_and_its_absence_only_warns(world: World, ctx: Ctx, runner: FakeRunner,
                                                   cluster: Cluster) -> None:
    host.apply(ctx, cluster, cluster.node("kava1"))
    # the first time the DNS server became known: chrony must resolve its servers again
    assert ("systemctl", "restart", "chrony.service") in runner.calls
    runner.calls.clear()
    host.apply(ctx, cluster, cluster.node("kava1"))
    assert ("systemctl", "start", "chrony.service") in runner.calls
    runner.calls.clear()
    runner.script("systemctl", "start", "chrony.service", rc=5, err="Unit chrony.service not found")
    host.apply(ctx, cluster, cluster.node("kava1"))  # a missing chrony only warns
    assert ("systemctl", "start", "chrony.service") in runner.calls


def test_resolv_conf_from_the_profiles_dns(world: World, ctx: Ctx, runner: FakeRunner, cluster: Cluster) -> None:
    # The image has no systemd-resolved: without this file nothing resolves the time servers' names.
    host.apply(ctx, cluster, cluster.node("kava1"))
    resolv = (world.root / "etc/resolv.conf").read_text()
    assert [line for line in resolv.splitlines() if not line.startswith("#")] == ["nameserver 192.168.0.1"]


def test_resolv_conf_left_to_resolved_when_it_is_in_charge(world: World, ctx: Ctx, runner: FakeRunner,
                                                          cluster: Cluster) -> None:
    link = world.root / "etc/resolv.conf"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to("../run/systemd/resolve/stub-resolv.conf")
    host.apply(ctx, cluster, cluster.node("kava1"))
    assert link.is_symlink() and str(link.readlink()) == "../run/systemd/resolve/stub-resolv.conf"
