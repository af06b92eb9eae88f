"""Bad profiles: exit code 2, the field path in the message, nothing written."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest

from builder.cli import main
from tests.conftest import pbx_ha_data, write_profile

Edit = Callable[[dict], None]


def setk(path: str, value: object) -> Edit:
    def edit(d: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            d = d[int(p)] if p.isdigit() else d[p]  # type: ignore[assignment]
        if isinstance(d, list):
            d[int(last)] = value
        else:
            d[last] = value
    return edit


def delk(path: str) -> Edit:
    def edit(d: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            d = d[int(p)] if p.isdigit() else d[p]  # type: ignore[assignment]
        del d[last]
    return edit


def both(*edits: Edit) -> Edit:
    def edit(d: dict) -> None:
        for e in edits:
            e(d)
    return edit


# (id, edit, field path expected in the message)
CASES: list[tuple[str, Edit, str]] = [
    ("typo-top-level", setk("heartbaet", {}), "heartbaet"),
    ("typo-nested", setk("drbd.protocl", "C"), "drbd.protocl"),
    ("bad-cluster-name", setk("cluster.name", "PBX_HA"), "cluster.name"),
    ("bad-release", setk("cluster.release", "buster"), "cluster.release"),
    ("bad-stack", setk("cluster.stack", "pacemaker"), "cluster.stack"),
    ("bad-hostname", setk("nodes.1.name", "kava 2"), "nodes[1].name"),
    ("duplicate-node-name", setk("nodes.1.name", "kava1"), "nodes[1].name"),
    ("three-nodes", lambda d: d["nodes"].append(copy.deepcopy(d["nodes"][1])), "nodes"),
    ("one-node", lambda d: d["nodes"].pop(), "nodes"),
    ("missing-vip", delk("vip"), "vip"),
    ("bad-address", setk("nodes.0.public.address", "192.168.0.300/24"), "nodes[0].public.address"),
    ("duplicate-address", setk("nodes.1.public.address", "192.168.0.100/24"), "nodes[1].public.address"),
    ("vip-outside-subnet", setk("vip.address", "192.168.1.105/24"), "vip.address"),
    ("vip-equals-node", setk("vip.address", "192.168.0.101/24"), "vip.address"),
    ("replication-two-subnets", setk("nodes.1.replication.address", "10.1.2.2/24"),
     "nodes[1].replication.address"),
    ("replication-in-public-subnet",
     both(setk("nodes.0.replication.address", "192.168.0.50/24"),
          setk("nodes.1.replication.address", "192.168.0.51/24")),
     "nodes[0].replication.address"),
    ("public-two-subnets", setk("nodes.1.public.address", "192.168.7.101/24"), "nodes[1].public.address"),
    ("gateway-outside", setk("nodes.0.public.gateway", "10.9.9.1"), "nodes[0].public.gateway"),
    ("bad-mac", setk("nodes.0.public.mac", "52:54:00:zz:00:01"), "nodes[0].public.mac"),
    ("duplicate-mac", setk("nodes.1.public.mac", "52:54:00:0a:00:01"), "nodes[1].public.mac"),
    ("no-interface-no-mac", both(delk("nodes.0.public.mac"), delk("nodes.0.public.interface")),
     "nodes[0].public"),
    ("warntime-not-below-deadtime", setk("heartbeat.warntime", "4s"), "heartbeat.warntime"),
    ("deadtime-below-2-keepalive", both(setk("heartbeat.keepalive", "3s"), setk("heartbeat.warntime", "1s")),
     "heartbeat.deadtime"),
    ("initdead-below-2-deadtime", setk("heartbeat.initdead", "5s"), "heartbeat.initdead"),
    ("bad-duration", setk("heartbeat.deadtime", "four seconds"), "heartbeat.deadtime"),
    ("udpport-out-of-range", setk("heartbeat.udpport", 70000), "heartbeat.udpport"),
    ("drbd-port-out-of-range", setk("drbd.port", 80), "drbd.port"),
    ("probe-port-clashes-drbd", setk("services.0.probe", {"tcp": 7788}), "services[0].probe.tcp"),
    ("relative-state-path", setk("services.0.state", ["var/lib/mysql"]), "services[0].state[0]"),
    ("overlapping-state-paths", setk("services.2.state", ["/var/lib/mysql/data"]), "services[2].state[0]"),
    ("top-level-state-path", setk("services.2.state", ["/var"]), "services[2].state[0]"),
    ("mount-relative", setk("drbd.mount", "replica"), "drbd.mount"),
    ("mount-under-etc", setk("drbd.mount", "/etc/replica"), "drbd.mount"),
    ("mount-under-home", setk("drbd.mount", "/home/replica"), "drbd.mount"),
    ("mount-under-usr", setk("drbd.mount", "/usr/replica"), "drbd.mount"),
    ("service-twice", lambda d: d["services"].append(copy.deepcopy(d["services"][0])), "services[3].name"),
    ("service-shadows-agent", setk("services.2.name", "apache"), "services[2].name"),
    ("unit-not-service", setk("services.0.unit", "mariadb"), "services[0].unit"),
    ("probe-two-kinds", setk("services.0.probe", {"tcp": 3306, "command": ["true"]}), "services[0].probe"),
    ("disk-backing-missing-node", setk("drbd.backing", {"kind": "disk", "disks": {"kava1": "/dev/vdb"}}),
     "drbd.backing.disks"),
    ("disk-backing-unknown-node",
     setk("drbd.backing", {"kind": "disk", "disks": {"kava1": "/dev/vdb", "kava2": "/dev/vdb", "kava3": "/dev/vdb"}}),
     "drbd.backing.disks.kava3"),
    ("partition-too-small", setk("drbd.backing.size", "1M"), "drbd.backing.size"),
    ("bad-size", setk("drbd.backing.size", "lots"), "drbd.backing.size"),
    ("bad-recipient", setk("alerts.recipients", ["ops-at-example"]), "alerts.recipients[0]"),
    ("no-recipients", setk("alerts.recipients", []), "alerts.recipients"),
    ("bad-protocol", setk("drbd.protocol", "D"), "drbd.protocol"),
    ("bad-ssh-key", setk("ssh_authorized_keys", ["hello world"]), "ssh_authorized_keys[0]"),
    ("bad-root-hash", setk("root_password_hash", "secret"), "root_password_hash"),
    # Values that match a pattern but for a trailing newline (re.match + $ accepted them).
    ("name-trailing-newline", setk("cluster.name", "pbx-ha\n"), "cluster.name"),
    ("mac-trailing-newline", setk("nodes.0.public.mac", "52:54:00:0a:00:01\n"), "nodes[0].public.mac"),
    ("ifname-trailing-newline", setk("nodes.0.public.interface", "lan0\n"), "nodes[0].public.interface"),
    ("email-trailing-newline", setk("alerts.sender", "a@example.org\n"), "alerts.sender"),
    # Semantic holes.
    ("gateway-is-vip", setk("nodes.0.public.gateway", "192.168.0.105"), "nodes[0].public.gateway"),
    ("gateway-is-own-address", setk("nodes.0.public.gateway", "192.168.0.100"), "nodes[0].public.gateway"),
    ("gateway-is-network", setk("nodes.0.public.gateway", "192.168.0.0"), "nodes[0].public.gateway"),
    ("gateway-is-broadcast", setk("nodes.1.public.gateway", "192.168.0.255"), "nodes[1].public.gateway"),
    ("broadcast-mac", setk("nodes.0.public.mac", "ff:ff:ff:ff:ff:ff"), "nodes[0].public.mac"),
    ("multicast-mac", setk("nodes.0.public.mac", "01:00:5e:00:00:01"), "nodes[0].public.mac"),
    ("zero-mac", setk("nodes.0.public.mac", "00:00:00:00:00:00"), "nodes[0].public.mac"),
    ("interface-dotdot", setk("nodes.0.public.interface", ".."), "nodes[0].public.interface"),
    ("two-nics-one-name", setk("nodes.0.replication.interface", "lan0"), "nodes[0].replication.interface"),
    ("default-name-clash", both(delk("nodes.0.replication.interface"), setk("nodes.0.public.interface", "repl0")),
     "nodes[0].replication.interface"),
    ("address-without-prefix", setk("nodes.0.public.address", "192.168.0.100"), "nodes[0].public.address"),
    ("vip-without-prefix", setk("vip.address", "192.168.0.105"), "vip.address"),
    ("public-lan-loopback", both(setk("nodes.0.public.address", "127.0.0.2/8"), setk("nodes.1.public.address", "127.0.0.3/8"),
                                 setk("vip.address", "127.0.0.5/8"), delk("nodes.0.public.gateway"),
                                 delk("nodes.1.public.gateway")), "nodes[0].public.address"),
    ("mount-var", setk("drbd.mount", "/var"), "drbd.mount"),
    ("mount-lib", setk("drbd.mount", "/lib/replica"), "drbd.mount"),
    ("mount-with-colon", setk("drbd.mount", "/srv/a:b"), "drbd.mount"),
    ("mount-shell", setk("drbd.mount", "/srv/$(reboot)"), "drbd.mount"),
    ("mount-space", setk("drbd.mount", "/srv/a b"), "drbd.mount"),
    ("disk-outside-dev", setk("drbd.backing", {"kind": "disk", "disks": {"kava1": "/srv/disk.img", "kava2": "/dev/vdb"}}),
     "drbd.backing.disks.kava1"),
    ("disk-is-drbd", setk("drbd.backing", {"kind": "disk", "disks": {"kava1": "/dev/drbd0", "kava2": "/dev/vdb"}}),
     "drbd.backing.disks.kava1"),
    ("disk-breaks-res", setk("drbd.backing", {"kind": "disk", "disks": {"kava1": "/dev/vdb;}", "kava2": "/dev/vdb"}}),
     "drbd.backing.disks.kava1"),
    ("resync-rate-zero", setk("drbd.resync_rate", "0"), "drbd.resync_rate"),
    ("wfc-below-a-second", setk("drbd.wfc_timeout", "500ms"), "drbd.wfc_timeout"),
    ("deadtime-31-years", setk("heartbeat.deadtime", "271560h"), "heartbeat.deadtime"),
    ("deadtime-infinite", setk("heartbeat.deadtime", float("inf")), "heartbeat.deadtime"),
    ("deadtime-nan", setk("heartbeat.deadtime", float("nan")), "heartbeat.deadtime"),
    ("warntime-below-keepalive", setk("heartbeat.warntime", "400ms"), "heartbeat.warntime"),
    ("unit-is-heartbeat", setk("services.0.unit", "heartbeat.service"), "services[0].unit"),
    ("unit-is-drbd", setk("services.0.unit", "drbd.service"), "services[0].unit"),
    ("unit-template", setk("services.0.unit", "x@.service"), "services[0].unit"),
    ("state-var-lib", setk("services.0.state", ["/var/lib"]), "services[0].state[0]"),
    ("state-usr-lib", setk("services.0.state", ["/usr/lib"]), "services[0].state[0]"),
    ("state-cluster-config", setk("services.0.state", ["/etc/ha.d"]), "services[0].state[0]"),
    ("two-services-one-port", setk("services.2.probe", {"tcp": 3306}), "services[2].probe.tcp"),
    ("empty-probe-command", setk("services.0.probe", {"command": [""]}), "services[0].probe.command[0]"),
    ("no-probe-command", setk("services.0.probe", {"command": []}), "services[0].probe.command"),
    ("node-localhost", setk("nodes.0.name", "localhost"), "nodes[0].name"),
    ("service-named-mailto", setk("services.2.name", "mailto"), "services[2].name"),
    ("service-named-ipaddr2", setk("services.2.name", "ipaddr2"), "services[2].name"),
    ("plain-smtp-with-user", setk("alerts.smtp.user", "ops"), "alerts.smtp.user"),
    ("rpm-name-macro", setk("services.0.packages.rpm", ["%(touch /tmp/pwned)"]), "services[0].packages.rpm[0]"),
    ("deb-name-newline", setk("services.0.packages.deb", ["mariadb-server\nDepends: evil"]),
     "services[0].packages.deb[0]"),
    ("image-package-newline", setk("packages", ["htop\n[Content]"]), "packages[0]"),
    ("time-server-newline", setk("time_servers", ["ntp.example.org\nserver evil"]), "time_servers[0]"),
    ("smtp-user-newline", both(setk("alerts.smtp.starttls", True), setk("alerts.smtp.user", "ops\nhost evil")),
     "alerts.smtp.user"),
    ("tls-trust-newline", setk("alerts.smtp.tls_trust_file", "/etc/ca.crt\ntls_certcheck off"),
     "alerts.smtp.tls_trust_file"),
    ("ping-is-vip", setk("heartbeat.ping", ["192.168.0.105"]), "heartbeat.ping[0]"),
    ("ping-multicast", setk("heartbeat.ping", ["224.0.0.1"]), "heartbeat.ping[0]"),
    ("dns-unspecified", setk("nodes.0.public.dns", ["0.0.0.0"]), "nodes[0].public.dns[0]"),
    ("key-with-bracket", setk("heartbeat.dead[0]time", "3s"), "heartbeat.dead[0]time"),
    ("top-key-with-index", setk("notes[0]", "x"), "notes[0]"),
]


@pytest.mark.parametrize(("edit", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Edit, field: str) -> None:
    data = pbx_ha_data()
    edit(data)
    profile = write_profile(tmp_path, data)
    out = tmp_path / "out"

    assert main(["render", "--profile", str(profile), "--out", str(out)]) == 2

    err = capsys.readouterr().err
    assert field in err, err
    assert "fix:" in err or "hint:" in err, err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")], "half-written output left"


def test_message_names_line_value_and_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = pbx_ha_data()
    data["nodes"][1]["replication"]["address"] = "10.1.2.2/24"
    profile = write_profile(tmp_path, data)

    assert main(["validate", "--profile", str(profile)]) == 2

    err = capsys.readouterr().err
    lines = profile.read_text().splitlines()
    lineno = next(i for i, line in enumerate(lines, 1) if "10.1.2.2/24" in line)
    assert f"cluster.yaml:{lineno}: nodes[1].replication.address: 10.1.2.2/24 is not in the subnet" in err
    assert "fix: put both replication addresses in one subnet" in err


def test_typo_suggests_the_known_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = pbx_ha_data()
    data["heartbeat"]["deadtiem"] = data["heartbeat"].pop("deadtime")
    assert main(["validate", "--profile", str(write_profile(tmp_path, data))]) == 2
    assert "did you mean `deadtime`?" in capsys.readouterr().err


def test_every_problem_is_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = pbx_ha_data()
    data["vip"]["address"] = "10.9.9.9/24"
    data["heartbeat"]["initdead"] = "5s"
    assert main(["validate", "--profile", str(write_profile(tmp_path, data))]) == 2
    err = capsys.readouterr().err
    assert "2 problems" in err and "vip.address" in err and "heartbeat.initdead" in err


def test_duplicate_yaml_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (tmp_path / "x").parent.joinpath("p.yaml")
    text.write_text("cluster: {name: a}\ncluster: {name: b}\n")
    assert main(["validate", "--profile", str(text)]) == 2
    assert "appears twice" in capsys.readouterr().err


def test_not_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("cluster: [unclosed\n")
    assert main(["validate", "--profile", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_unknown_builtin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--profile", "pbx-hq"]) == 2
    assert "built-in profiles: pbx-ha" in capsys.readouterr().err


def test_valid_builtin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--profile", "pbx-ha"]) == 0
    assert "ok" in capsys.readouterr().err


def test_at_least_25_invalid_cases() -> None:
    assert len(CASES) >= 25
