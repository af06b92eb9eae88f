"""The real heartbeat daemon runs our ha.cf and authkeys: two nodes in namespaces fail over."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.profile.load import load_profile
from builder.render import render
from tests.conftest import FAKE_SECRETS
from tests.native_heartbeat import NativeCluster, failover_figures

# Each boots two heartbeat daemons and waits out real timeouts: ~40 s apiece.
pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NativeCluster]:
    profile = load_profile("pbx-ha")
    c = NativeCluster(profile, render(profile, FAKE_SECRETS), tmp_path)
    try:
        yield c
    finally:
        c.down()


def test_failover_and_failback_with_the_rendered_config(cluster: NativeCluster) -> None:
    kava1, kava2 = cluster.nodes

    figures = failover_figures(cluster)

    # heartbeat accepted our ha.cf and authkeys (a bad key or option stops it at start).
    for node in cluster.nodes:
        assert "Configuration validated" in node.log.read_text()
    # auto_failback on: the preferred node has the VIP again, and only it.
    assert kava1.holds(cluster.vip) and not kava2.holds(cluster.vip)
    assert "node kava1: is dead" in kava2.log.read_text()
    assert set(figures) == {"ready_s", "failover_s", "failback_s"}


def test_a_wrong_authkey_keeps_the_nodes_apart(cluster: NativeCluster) -> None:
    kava1, kava2 = cluster.nodes
    for node in cluster.nodes:
        cluster._prepare(node)
    keys = kava2.folder / "ha.d" / "authkeys"
    keys.write_text(keys.read_text().replace(FAKE_SECRETS.heartbeat_key, "0" * 64))

    cluster.up()
    cluster.wait_for(kava1, timeout=90)
    cluster.wait_for(kava2, timeout=90)  # kava2 never hears kava1: it takes the VIP too

    logs = kava1.log.read_text(errors="replace") + kava2.log.read_text(errors="replace")
    assert "authtoken does not match" in logs, logs[-3000:]
