"""The lab's wiring, without booting anything: addresses, taps, QEMU's argv."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from builder.lab.cluster import Cluster, client_address
from builder.lab.vm import Vm, VmSpec, VmStartError
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
    assert "-accel tcg,thread=multi" in argv  # the tuned TCG by default
    bridges = {t.name: t.bridge for t in cluster.net.taps}
    assert bridges == {"t0p": "br-pub", "t0r": "br-repl", "t1p": "br-pub", "t1r": "br-repl"}


class FlakyQemu(Vm):
    """A 'QEMU' that dies at its first start (a host hiccup), then opens its status socket."""

    def argv(self) -> list[str]:
        if self.boots == 1:
            return ["sh", "-c", "echo 'qemu: could not open /dev/net/tun' >&2; exit 1"]
        return [sys.executable, "-c", "import socket, sys, time; s = socket.socket(socket.AF_UNIX); "
                f"s.bind({str(self.status_socket)!r}); s.listen(); time.sleep(60)"]


class Here:
    """A LabNetwork stand-in that runs commands in the host's namespace."""

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, **kwargs)


@pytest.mark.parametrize(("accel", "qemu_accel", "cpu"), [("tcg-plain", "tcg", "max"), ("kvm", "kvm", "host")])
def test_the_accel_choice_sets_qemus_accelerator_and_cpu(tmp_path: Path, accel: str, qemu_accel: str,
                                                         cpu: str) -> None:
    profile = load_profile("pbx-ha")
    image = tmp_path / "pbx-ha.qcow2"
    image.touch()
    argv = Cluster(profile, FAKE_SECRETS, image, tmp_path / "lab", accel).peer.vm.argv()
    assert argv[argv.index("-accel") + 1] == qemu_accel and argv[argv.index("-cpu") + 1] == cpu


def test_a_qemu_that_fails_to_start_is_retried_once_and_reported(tmp_path: Path) -> None:
    vm = FlakyQemu(VmSpec("kava1", tmp_path / "base.qcow2", tmp_path / "kava1", []), Here())  # type: ignore[arg-type]
    vm.prepare = lambda: None  # type: ignore[method-assign]  # no disk needed
    try:
        vm.start()
        assert vm.running() and vm.boots == 2
        assert vm.hiccups == ["QEMU for kava1 did not start (boot 1):"]
    finally:
        vm.stop()


def test_a_qemu_that_fails_twice_is_an_error(tmp_path: Path) -> None:
    vm = FlakyQemu(VmSpec("kava1", tmp_path / "base.qcow2", tmp_path / "kava1", []), Here())  # type: ignore[arg-type]
    vm.prepare = lambda: None  # type: ignore[method-assign]
    vm.argv = lambda: ["sh", "-c", "exit 1"]  # type: ignore[method-assign]
    with pytest.raises(VmStartError, match="boot 2"):
        vm.start()
    assert len(vm.hiccups) == 1
