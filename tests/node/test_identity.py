from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest

from builder.node import cli, identity
from builder.node.config import Cluster
from builder.node.context import Ctx
from builder.node.errors import EXIT_IDENTITY, IdentityError

from .fakes import FakeRunner, World, make_ctx, snapshot


def smbios_type11(*strings: str) -> bytes:
    header = struct.pack("<BBHB", 11, 5, 0x0B00, len(strings))
    return header + b"".join(s.encode() + b"\0" for s in strings) + b"\0"


def put(root: Path, path: str, text: str | bytes) -> None:
    p = root / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(text if isinstance(text, bytes) else text.encode())


def set_cmdline(root: Path, extra: str) -> None:
    put(root, "/proc/cmdline", f"BOOT_IMAGE=/vmlinuz root=/dev/vda2 ro {extra}\n")


def add_nic(root: Path, name: str, mac: str) -> None:
    put(root, f"/sys/class/net/{name}/address", mac + "\n")


def test_smbios_parser_reads_systemd_credentials() -> None:
    raw = smbios_type11(
        "vendor junk",
        "io.systemd.credential:cluster.node=kava2",
        "io.systemd.credential.binary:other=" + base64.b64encode(b"x").decode(),
    )
    assert identity.smbios_credentials(raw) == {"cluster.node": "kava2", "other": "x"}
    assert identity.smbios_credentials(b"\x01\x05\x00\x00\x01a\0\0") == {}


# Each source alone; then the order is checked by stacking them below.
def _credentials_dir(root: Path, ctx: Ctx) -> None:
    ctx.env = {"CREDENTIALS_DIRECTORY": "/run/credentials/cluster-firstboot.service"}
    put(root, "/run/credentials/cluster-firstboot.service/cluster.node", "kava2\n")


def _system_dir(root: Path, ctx: Ctx) -> None:
    put(root, "/run/credentials/@system/cluster.node", "kava2")


def _smbios(root: Path, ctx: Ctx) -> None:
    put(root, "/sys/firmware/dmi/entries/11-0/raw",
        smbios_type11("io.systemd.credential:cluster.node=kava2"))


def _set_credential(root: Path, ctx: Ctx) -> None:
    set_cmdline(root, "systemd.set_credential=cluster.node:kava2 quiet")


def _cmdline(root: Path, ctx: Ctx) -> None:
    set_cmdline(root, "quiet cluster.node=kava2")


def _mac(root: Path, ctx: Ctx) -> None:
    add_nic(root, "lo", "00:00:00:00:00:00")
    add_nic(root, "enp1s0", "52:54:00:0B:00:02")  # replication NIC of kava2, upper case


def _hostname(root: Path, ctx: Ctx) -> None:
    put(root, "/proc/sys/kernel/hostname", "kava2\n")


SOURCES = [
    (_credentials_dir, "$CREDENTIALS_DIRECTORY/cluster.node"),
    (_system_dir, "/run/credentials/@system/cluster.node"),
    (_smbios, "SMBIOS type 11 (11-0)"),
    (_set_credential, "kernel command line systemd.set_credential"),
    (_cmdline, "kernel command line cluster.node="),
    (_mac, "NIC MAC 52:54:00:0b:00:02"),
    (_hostname, "hostname"),
]


@pytest.mark.parametrize(("setup", "source"), SOURCES, ids=[s for _, s in SOURCES])
def test_each_source_alone(world: World, ctx: Ctx, cluster: Cluster, setup, source) -> None:
    setup(world.root, ctx)
    ident = identity.resolve(ctx, cluster)
    assert (ident.name, ident.source) == ("kava2", source)


def _say(root: Path, ctx: Ctx, index: int, name: str, cmdline: list[str]) -> None:
    """Make source number `index` (order of SOURCES) say `name`."""
    if index == 0:
        ctx.env = {"CREDENTIALS_DIRECTORY": "/run/creds"}
        put(root, "/run/creds/cluster.node", name)
    elif index == 1:
        put(root, "/run/credentials/@system/cluster.node", name)
    elif index == 2:
        put(root, "/sys/firmware/dmi/entries/11-0/raw",
            smbios_type11(f"io.systemd.credential:cluster.node={name}"))
    elif index == 3:
        cmdline.append(f"systemd.set_credential=cluster.node:{name}")
    elif index == 4:
        cmdline.append(f"cluster.node={name}")
    elif index == 5:
        add_nic(root, "eth0", {"kava1": "52:54:00:0a:00:01", "kava2": "52:54:00:0a:00:02"}[name])
    else:
        put(root, "/proc/sys/kernel/hostname", name)


@pytest.mark.parametrize("winner", range(len(SOURCES) - 1))
def test_earlier_source_wins(world: World, ctx: Ctx, cluster: Cluster, winner: int) -> None:
    """The source under test says kava2, every later source says kava1: kava2 wins."""
    cmdline: list[str] = []
    _say(world.root, ctx, winner, "kava2", cmdline)
    for later in range(winner + 1, len(SOURCES)):
        _say(world.root, ctx, later, "kava1", cmdline)
    set_cmdline(world.root, " ".join(cmdline))
    ident = identity.resolve(ctx, cluster)
    assert ident.name == "kava2"
    assert ident.source.startswith(SOURCES[winner][1].split(" (")[0].replace(" 52:54:00:0b:00:02", ""))


def test_credential_naming_no_node_stops_even_if_hostname_matches(
    world: World, ctx: Ctx, cluster: Cluster
) -> None:
    _system_dir(world.root, ctx)
    put(world.root, "/run/credentials/@system/cluster.node", "kava9")
    put(world.root, "/proc/sys/kernel/hostname", "kava1\n")
    with pytest.raises(IdentityError, match="'kava9', not a node"):
        identity.resolve(ctx, cluster)


def test_macs_of_both_nodes_is_refused(world: World, ctx: Ctx, cluster: Cluster) -> None:
    add_nic(world.root, "eth0", "52:54:00:0a:00:01")
    add_nic(world.root, "eth1", "52:54:00:0a:00:02")
    with pytest.raises(IdentityError, match="more than one node"):
        identity.resolve(ctx, cluster)


def test_no_match_says_why_and_touches_nothing(
    world: World, runner: FakeRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    add_nic(world.root, "eth0", "de:ad:be:ef:00:01")
    before = snapshot(world.root)
    rc = cli.main(["provision"], ctx=make_ctx(world, runner))
    assert rc == EXIT_IDENTITY
    assert runner.acting() == []  # not one command, destructive or not (logger only tells the journal)
    assert snapshot(world.root) == before  # no state file, no hostname, nothing
    err = capsys.readouterr().err
    for said in ("$CREDENTIALS_DIRECTORY: not set", "/run/credentials/@system/cluster.node: absent",
                 "SMBIOS type 11 OEM strings: no cluster.node in 0 entries",
                 "kernel command line cluster.node=: absent",
                 "NIC MACs: eth0 de:ad:be:ef:00:01: none listed",
                 "hostname: 'debian'", "Nodes in cluster.json: kava1, kava2",
                 "Nothing was changed"):
        assert said in err


def test_identity_changed_since_provisioning_is_refused(
    world: World, runner: FakeRunner, cluster: Cluster
) -> None:
    set_cmdline(world.root, "cluster.node=kava1")
    state = world.root / "var/lib/cluster/state.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"format": 1, "done": ["identity", "host"], "node": "kava2"}')
    rc = cli.main(["provision"], ctx=make_ctx(world, runner))
    assert rc == EXIT_IDENTITY
    assert runner.acting() == []
