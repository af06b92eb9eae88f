from __future__ import annotations

import os

import pytest

from builder.node import services
from builder.node.context import Ctx
from builder.node.errors import NodeError

from .fakes import FakeRunner, World

BACKUP = "/var/lib/cluster/backup"


@pytest.fixture
def mounted(world: World) -> World:
    world.role, world.fs = "Primary", "ext4"
    (world.root / "replica").mkdir()
    world._mount()
    return world


def test_move_then_rerun_is_a_noop(mounted: World, ctx: Ctx, runner: FakeRunner) -> None:
    assert services.move(ctx, "/var/lib/mysql", "/replica", BACKUP) == "moved"
    assert os.readlink(mounted.root / "var/lib/mysql") == "/replica/var/lib/mysql"
    assert (mounted.root / "replica/var/lib/mysql/ibdata1").read_text() == "innodb"
    assert not list((mounted.root / "var/lib").glob("*.clusterctl-*"))
    runner.calls.clear()
    assert services.move(ctx, "/var/lib/mysql", "/replica", BACKUP) == "already"
    assert runner.calls == []


def test_move_refuses_a_foreign_symlink(mounted: World, ctx: Ctx) -> None:
    (mounted.root / "var/www/html/index.html").unlink()
    (mounted.root / "var/www/html").rmdir()
    os.symlink("/srv/www", mounted.root / "var/www/html")
    with pytest.raises(NodeError, match="refusing to guess"):
        services.move(ctx, "/var/www/html", "/replica", BACKUP)


def test_move_of_a_path_that_exists_nowhere(mounted: World, ctx: Ctx) -> None:
    with pytest.raises(NodeError, match="does not exist here nor on /replica"):
        services.move(ctx, "/var/lib/nothing", "/replica", BACKUP)


def test_existing_replicated_data_wins_local_copy_kept(
    mounted: World, ctx: Ctx, runner: FakeRunner
) -> None:
    (mounted.root / "replica/var/lib/mysql").mkdir(parents=True)
    (mounted.root / "replica/var/lib/mysql/ibdata1").write_text("cluster data")
    assert services.move(ctx, "/var/lib/mysql", "/replica", BACKUP) == "linked"
    assert not runner.commands("cp")  # never copied over the cluster's data
    assert (mounted.root / "replica/var/lib/mysql/ibdata1").read_text() == "cluster data"
    assert (mounted.root / "var/lib/cluster/backup/var/lib/mysql/ibdata1").read_text() == "innodb"


def test_link_on_the_other_node_keeps_older_backups(world: World, ctx: Ctx) -> None:
    assert services.link(ctx, "/var/lib/mysql", "/replica", BACKUP) == "linked"
    assert os.readlink(world.root / "var/lib/mysql") == "/replica/var/lib/mysql"
    assert services.link(ctx, "/var/lib/mysql", "/replica", BACKUP) == "already"
    # the package manager recreated the directory later: replaced again, first backup kept
    (world.root / "var/lib/mysql").unlink()
    (world.root / "var/lib/mysql").mkdir()
    assert services.link(ctx, "/var/lib/mysql", "/replica", BACKUP) == "linked"
    assert (world.root / "var/lib/cluster/backup/var/lib/mysql/ibdata1").exists()
    assert (world.root / "var/lib/cluster/backup/var/lib/mysql.1").is_dir()


def test_stop_tolerates_a_missing_unit_but_not_a_failing_stop(
    ctx: Ctx, runner: FakeRunner, cluster
) -> None:
    svc = cluster.services[0]
    runner.script("systemctl", "stop", rc=5, err="Unit mariadb.service not loaded.")
    services.stop(ctx, svc)
    runner.script("systemctl", "stop", rc=1, err="Job failed")
    with pytest.raises(NodeError, match=r"cannot stop mariadb\.service"):
        services.stop(ctx, svc)
