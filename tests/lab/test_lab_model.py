"""The lab's wiring, without booting anything: addresses, taps, QEMU's argv."""

from __future__ import annotations

from pathlib import Path

from builder.lab.cluster import Cluster, client_address
from builder.profile.load import load_profile
from tests.conftest import FAKE_SECRETS


def test_client_end_takes_a_free_address_on_the_public_lan() -> None:
    profile = load_profile("pbx-ha")
    addr = client_address(profile)
    assert addr.network == profile.vip.address.network
    taken = {profile.vip.address.ip, *(n.public.address.ip for n in profile.nodes),
             *(n.public.gateway for n in profile.nodes)}
    assert addr.ip not in taken


def test_each_nic_is_a_tap_with_the_profiles_mac_and_no_user_networking(tmp_path: Path) -> None:
    profile = load_profile("pbx-ha")
    image = tmp_path / "pbx-ha.qcow2"
    image.touch()
    cluster = Cluster(profile, FAKE_SECRETS, image, tmp_path / "lab")
    argv = " ".join(cluster.preferred.vm.argv())
    assert "mac=52:54:00:0a:00:01" in argv and "mac=52:54:00:0b:00:01" in argv
    assert "tap,id=n0,ifname=t0p" in argv and "tap,id=n1,ifname=t0r" in argv
    assert "-netdev user" not in argv and "slirp" not in argv and "hostfwd" not in argv
    assert "io.systemd.credential:cluster.node=kava1" in argv
    assert "-accel tcg" in argv
    bridges = {t.name: t.bridge for t in cluster.net.taps}
    assert bridges == {"t0p": "br-pub", "t0r": "br-repl", "t1p": "br-pub", "t1r": "br-repl"}
