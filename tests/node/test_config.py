from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.node import config
from builder.node.errors import ConfigError

from .fakes import cluster_doc


def test_parses_the_documented_example() -> None:
    c = config.parse(cluster_doc())
    assert c.node_names == ["kava1", "kava2"]
    assert c.node("kava1").preferred and not c.node("kava2").preferred
    assert c.peer("kava1").name == "kava2"
    assert c.node("kava2").replication.address == "10.1.1.2"
    assert c.drbd.backing.partlabel == "drbd-r0"
    assert [s.probe.kind if s.probe else None for s in c.services] == ["tcp", "udp_sip", "tcp"]
    assert c.state_dir == "/var/lib/cluster"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["nodes"][1]["public"].pop("address"), "nodes[1].public.address"),
        (lambda d: d.update(format=2), "format 2"),
        (lambda d: d["nodes"][1].update(preferred=True), "exactly one node"),
        (lambda d: d["services"][0].update(probe={"tcp": 1, "udp_sip": 2}), "exactly one of"),
        (lambda d: d["drbd"].update(peer_timeout_s="300"), "drbd.peer_timeout_s"),
        (lambda d: d["services"][0].update(state=["var/lib/mysql"]), "bad state path"),
        (lambda d: d["drbd"]["backing"].update(kind="disk"), "disks"),
    ],
)
def test_errors_name_the_json_path(mutate, message) -> None:
    doc = cluster_doc()
    mutate(doc)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config.parse(doc)


def test_command_probe_and_whole_disk_backing(tmp_path: Path) -> None:
    doc = cluster_doc(backing={"kind": "disk", "partlabel": None,
                               "disks": {"kava1": "/dev/vdb", "kava2": "/dev/sdb"}})
    doc["services"][1]["probe"] = {"command": ["kamctl", "ping"]}
    p = tmp_path / "cluster.json"
    p.write_text(json.dumps(doc))
    c = config.load(p)
    assert c.drbd.backing.disks["kava2"] == "/dev/sdb"
    assert c.services[1].probe is not None and c.services[1].probe.argv == ("kamctl", "ping")


def test_unreadable_or_bad_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        config.load(tmp_path / "bad.json")
