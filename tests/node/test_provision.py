from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from builder.node import cli, config
from builder.node.errors import EXIT_FAILED, EXIT_IDENTITY, EXIT_UNSAFE
from builder.node.provision import Provisioner

from .fakes import FakeRunner, Peer, World, cluster_doc, make_ctx, snapshot


def provision(world: World, runner: FakeRunner) -> int:
    return cli.main(["provision"], ctx=make_ctx(world, runner))


def make_world(tmp_path: Path, name: str = "kava1", peer: Peer | None = None, **kw) -> World:
    w = World(tmp_path / "root", name=name, peer=peer or Peer(), **kw)
    w.install(cmdline=f"cluster.node={name}")
    return w


def drbd_calls(runner: FakeRunner) -> list[str]:
    return [" ".join(c[1:-1]) for c in runner.commands("drbdadm")]


def test_preferred_with_fresh_peer_skips_initial_sync(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    runner = FakeRunner(world)
    assert provision(world, runner) == 0
    assert drbd_calls(runner) == [
        "dump-md", "create-md", "up", "new-current-uuid --clear-bitmap", "primary",
        "secondary", "down",
    ]
    assert runner.destructive() == {"create-md": 1, "clear-bitmap": 1, "primary --force": 0,
                                    "mkfs": 1}
    assert world.violations == []
    assert (world.md, world.disk, world.fs, world.up, world.mounted) == (
        True, "UpToDate", "ext4", False, False)
    root = world.root
    # state moved once onto the replicated filesystem, symlinks left behind
    assert os.readlink(root / "var/lib/mysql") == "/replica/var/lib/mysql"
    assert os.readlink(root / "etc/apache2/sites-enabled") == "/replica/etc/apache2/sites-enabled"
    assert (world.store / "var/lib/mysql/ibdata1").read_text() == "innodb"
    assert (world.store / "var/www/html/index.html").exists()
    assert not (root / "var/lib/cluster/backup").exists()
    # services stopped before their data moved, disabled at boot; then drbd, heartbeat
    cmds = [" ".join(c) for c in runner.calls]
    assert cmds.index("systemctl stop mariadb.service") < cmds.index(
        next(c for c in cmds if c.startswith("cp ") and "mysql" in c))
    for unit in ("mariadb.service", "kamailio.service", "apache2.service"):
        assert f"systemctl disable {unit}" in cmds
    # found in the lab: a probe on mariadb.socket started MariaDB on local data mid-move
    assert cmds.index("systemctl stop mariadb*.socket") < cmds.index("systemctl stop mariadb.service")
    assert "systemctl disable mariadb.socket" in cmds
    assert cmds[-2:] == ["systemctl start drbd.service", "systemctl start heartbeat.service"]
    # DRBD left down (clean bitmap) before drbd.service and heartbeat take over
    assert cmds.index("drbdadm down r0") < cmds.index("systemctl start drbd.service")
    state = json.loads((root / "var/lib/cluster/state.json").read_text())
    assert state["done"] == ["identity", "host", "disk", "drbd", "services"]
    assert state["node"] == "kava1"


def test_second_provision_changes_nothing(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    assert provision(world, FakeRunner(world)) == 0
    world.reboot()
    before = snapshot(world.root), snapshot(world.store)
    runner = FakeRunner(world)
    assert provision(world, runner) == 0
    assert runner.calls == [("systemctl", "start", "drbd.service"),
                            ("systemctl", "start", "heartbeat.service")]
    assert (snapshot(world.root), snapshot(world.store)) == before


def test_every_step_is_idempotent_when_forced_to_rerun(tmp_path: Path) -> None:
    """Even with the state file gone, a rerun finds everything done and destroys nothing."""
    world = make_world(tmp_path)
    assert provision(world, FakeRunner(world)) == 0
    world.reboot()
    (world.root / "var/lib/cluster/state.json").unlink()
    before = snapshot(world.store)
    runner = FakeRunner(world)
    assert provision(world, runner) == 0
    assert runner.destructive() == dict.fromkeys(runner.destructive(), 0)
    assert world.violations == []
    assert snapshot(world.store) == before
    assert not (world.root / "var/lib/cluster/backup").exists()


def test_create_md_skipped_when_metadata_exists(tmp_path: Path) -> None:
    world = make_world(tmp_path, md=True, disk="Inconsistent")
    runner = FakeRunner(world)
    # metadata we did not make in this provisioning: never declared good by --clear-bitmap
    assert provision(world, runner) == EXIT_UNSAFE
    assert "create-md" not in drbd_calls(runner)
    assert runner.destructive() == dict.fromkeys(runner.destructive(), 0)


def test_mkfs_skipped_when_filesystem_exists(tmp_path: Path) -> None:
    world = make_world(tmp_path, md=True, disk="UpToDate", fs="ext4")
    world.peer.disk = "UpToDate"
    (world.store / "var/lib/mysql").mkdir(parents=True)
    (world.store / "var/lib/mysql/ibdata1").write_text("the cluster's real data")
    runner = FakeRunner(world)
    assert provision(world, runner) == 0
    assert runner.destructive() == dict.fromkeys(runner.destructive(), 0)
    assert drbd_calls(runner) == ["dump-md", "up", "primary", "secondary", "down"]
    # the replicated copy wins; the fresh local one is kept aside, not deleted
    assert (world.store / "var/lib/mysql/ibdata1").read_text() == "the cluster's real data"
    assert (world.root / "var/lib/cluster/backup/var/lib/mysql/ibdata1").read_text() == "innodb"
    assert os.readlink(world.root / "var/lib/mysql") == "/replica/var/lib/mysql"


def test_peer_timeout_preferred_proceeds_alone(tmp_path: Path) -> None:
    world = make_world(tmp_path, peer=Peer(present=False))
    runner = FakeRunner(world)
    start = world.now
    assert provision(world, runner) == 0
    assert drbd_calls(runner) == ["dump-md", "create-md", "up", "primary --force", "secondary",
                                  "down"]
    assert runner.destructive()["mkfs"] == 1
    waited = world.now - start
    assert 300 <= waited < 310  # peer_timeout_s, polled every 2 s
    assert world.disk == "UpToDate" and world.peer.disk == "Inconsistent"  # peer syncs later


def test_peer_timeout_never_forces_over_data_not_ours(tmp_path: Path) -> None:
    world = make_world(tmp_path, peer=Peer(present=False), md=True, disk="Inconsistent")
    runner = FakeRunner(world)
    assert provision(world, runner) == EXIT_FAILED
    assert "primary --force" not in drbd_calls(runner)
    assert runner.destructive() == dict.fromkeys(runner.destructive(), 0)


def test_non_preferred_waits_for_the_preferred_then_links(tmp_path: Path) -> None:
    peer = Peer(promotes_after=6, leaves_after=20)
    world = make_world(tmp_path, name="kava2", peer=peer)
    runner = FakeRunner(world)
    assert provision(world, runner) == 0
    assert drbd_calls(runner) == ["dump-md", "create-md", "up", "down"]
    assert runner.destructive() == {"create-md": 1, "clear-bitmap": 0, "primary --force": 0,
                                    "mkfs": 0}
    assert world.fs is None and world.disk == "UpToDate"
    assert os.readlink(world.root / "var/lib/mysql") == "/replica/var/lib/mysql"
    assert (world.root / "var/lib/cluster/backup/var/lib/mysql/ibdata1").read_text() == "innodb"
    assert (world.root / "var/lib/cluster/backup/var/www/html/index.html").exists()


def test_non_preferred_peer_timeout_never_forces(tmp_path: Path) -> None:
    world = make_world(tmp_path, name="kava2", peer=Peer(present=False))
    runner = FakeRunner(world)
    assert provision(world, runner) == 0
    assert drbd_calls(runner) == ["dump-md", "create-md", "up", "down"]
    assert not [c for c in runner.calls if c[0].startswith("mkfs") or c[0] == "mount"]
    assert world.disk == "Inconsistent"  # syncs when the preferred node comes


def test_preferred_links_only_when_peer_is_already_primary(tmp_path: Path) -> None:
    world = make_world(tmp_path, peer=Peer(role="Primary", disk="UpToDate"),
                       md=True, disk="UpToDate", fs="ext4")
    runner = FakeRunner(world)
    assert provision(world, runner) == 0
    assert drbd_calls(runner) == ["dump-md", "up", "down"]
    assert os.readlink(world.root / "var/lib/mysql") == "/replica/var/lib/mysql"


def test_foreign_disk_is_refused_before_anything_destructive(tmp_path: Path) -> None:
    world = make_world(tmp_path, backing_foreign="xfs")
    runner = FakeRunner(world)
    assert provision(world, runner) == EXIT_UNSAFE
    assert runner.commands("drbdadm") == []
    assert runner.destructive() == dict.fromkeys(runner.destructive(), 0)
    state = json.loads((world.root / "var/lib/cluster/state.json").read_text())
    assert state["error"]["step"] == "disk"


def test_unknown_identity_runs_no_destructive_step(tmp_path: Path) -> None:
    world = World(tmp_path / "root")
    world.install()  # no cluster.node anywhere, hostname "debian"
    runner = FakeRunner(world)
    assert cli.main(["boot"], ctx=make_ctx(world, runner)) == EXIT_IDENTITY
    assert runner.acting() == []


def test_step_without_identity_refuses(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    runner = FakeRunner(world)
    p = Provisioner(make_ctx(world, runner), config.parse(cluster_doc()))
    with pytest.raises(Exception, match="identity unknown"):
        p.step_drbd()
    assert runner.calls == []


def test_backing_device_that_never_appears(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    (world.root / World.BACKING.lstrip("/")).unlink()
    runner = FakeRunner(world)
    assert provision(world, runner) == EXIT_FAILED
    assert runner.commands("drbdadm") == []


def test_undecidable_metadata_answer_stops(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    runner = FakeRunner(world)
    runner.script("drbdadm", "dump-md", rc=10, err="'r0' not defined in your config")
    assert provision(world, runner) == EXIT_FAILED
    assert "create-md" not in drbd_calls(runner)


def test_boot_starts_drbd_then_heartbeat_only_after_provisioning(tmp_path: Path) -> None:
    world = make_world(tmp_path, backing_foreign="ext4")
    runner = FakeRunner(world)
    assert cli.main(["boot"], ctx=make_ctx(world, runner)) == EXIT_UNSAFE
    assert not runner.commands("systemctl", "start", "heartbeat.service")


def test_first_boot_of_the_other_node_waits_for_the_preferred_before_heartbeat(tmp_path: Path) -> None:
    # The other node finishes first; started at once, its heartbeat would take the
    # resources after initdead while the preferred node still prepares them.
    timeout = config.parse(cluster_doc()).drbd.peer_timeout_s
    kava2 = make_world(tmp_path / "2", name="kava2", peer=Peer(present=False))
    t0 = kava2.now
    assert provision(kava2, FakeRunner(kava2)) == 0
    assert kava2.now - t0 >= 2 * timeout  # in the drbd step, and again before heartbeat
    assert kava2.units["heartbeat.service"] == "active"  # bounded: it starts all the same

    kava1 = make_world(tmp_path / "1", name="kava1", peer=Peer(present=False))
    t0 = kava1.now
    assert provision(kava1, FakeRunner(kava1)) == 0
    assert kava1.now - t0 < 2 * timeout  # the preferred node does not wait twice
