"""The lab's site services: which addresses and names the lab plays, and the real
dnsmasq and chronyd answering a client that resolves and queries as a node does."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from ipaddress import IPv4Interface
from pathlib import Path

import pytest

from builder.lab.net import LabNetwork
from builder.lab.poll import poll
from builder.lab.site import CHRONYD, Site, SitePlan, site_plan
from builder.profile.load import load_profile


def test_pbx_ha_site_is_its_gateway_answering_the_pool_name() -> None:
    plan = site_plan(load_profile("pbx-ha"))
    assert plan.dns == IPv4Interface("192.168.0.1/24")
    assert plan.names == ("2.debian.pool.ntp.org",)
    assert plan.time_addresses == (IPv4Interface("192.168.0.1/24"),)
    assert plan.serves_time


def test_a_time_server_address_off_the_lan_is_not_played(tmp_path: Path) -> None:
    profile = load_profile("pbx-ha")
    profile = profile.model_copy(update={"time_servers": ["10.200.0.1", "192.168.0.2"]})
    plan = site_plan(profile)
    assert plan.names == () and plan.time_addresses == (IPv4Interface("192.168.0.2/24"),)
    assert plan.addresses == (IPv4Interface("192.168.0.1/24"), IPv4Interface("192.168.0.2/24"))


@pytest.fixture
def network() -> Iterator[LabNetwork]:
    net = LabNetwork(f"bsite-{uuid.uuid4().hex[:8]}", IPv4Interface("192.168.0.254/24"),
                     IPv4Interface("10.1.1.254/24"), (), extra=(IPv4Interface("192.168.0.1/24"),))
    # `ip netns exec` reads this resolv.conf in place of the host's: the client resolves as a node would.
    etc = Path("/etc/netns") / net.namespace
    etc.mkdir(parents=True)
    (etc / "resolv.conf").write_text("nameserver 192.168.0.1\n")
    net.up()
    try:
        yield net
    finally:
        net.down()
        shutil.rmtree(etc)


def test_the_site_resolves_the_time_server_and_serves_time(network: LabNetwork, tmp_path: Path) -> None:
    plan = SitePlan(IPv4Interface("192.168.0.1/24"), ("2.debian.pool.ntp.org",), (IPv4Interface("192.168.0.1/24"),))
    site = Site(network, plan, tmp_path / "site")
    site.start()
    try:
        def resolved() -> str:
            return network.run(["getent", "ahostsv4", "2.debian.pool.ntp.org"], check=False).stdout
        poll(resolved, "dnsmasq answers", timeout=20, every=0.5)  # it starts in the background
        assert resolved().split()[0] == "192.168.0.1"
        other = network.run(["getent", "hosts", "example.org"], check=False)
        assert other.returncode == 2 and not other.stdout  # NXDOMAIN at once: no upstream, no timeout
        # chronyd -Q: measure the offset against the server and exit, the clock untouched.
        q = network.run([str(CHRONYD), "-Q", "-u", "root", "-f", "/dev/null", "-t", "30",
                         "server 2.debian.pool.ntp.org iburst maxsamples 4"], timeout=60)
        assert "System clock wrong by" in q.stdout  # run() merges stderr into stdout
    finally:
        site.stop()
