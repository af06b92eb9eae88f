"""Reads /etc/cluster/cluster.json (docs/cluster-json.md) into plain dataclasses.

This file is the agent's only input from the build side. Errors name the JSON
path, e.g. `nodes[1].public.address`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.node.errors import ConfigError

CLUSTER_JSON = "/etc/cluster/cluster.json"
FORMAT = 1


@dataclass(frozen=True)
class Link:
    interface: str
    mac: str | None
    address: str
    prefix: int
    gateway: str | None
    dns: tuple[str, ...]


@dataclass(frozen=True)
class Node:
    name: str
    preferred: bool
    public: Link
    replication: Link


@dataclass(frozen=True)
class Vip:
    address: str
    prefix: int
    interface: str


@dataclass(frozen=True)
class Backing:
    kind: str  # "partition" | "disk"
    partlabel: str | None
    disks: dict[str, str]


@dataclass(frozen=True)
class Drbd:
    resource: str
    device: str
    minor: int
    backing: Backing
    filesystem: str
    mount: str
    peer_timeout_s: int


@dataclass(frozen=True)
class Probe:
    kind: str  # "tcp" | "udp_sip" | "command"
    port: int | None = None
    argv: tuple[str, ...] = ()


@dataclass(frozen=True)
class Service:
    name: str
    unit: str
    state: tuple[str, ...]
    probe: Probe | None


@dataclass(frozen=True)
class Cluster:
    name: str
    nodes: tuple[Node, ...]
    vip: Vip
    drbd: Drbd
    services: tuple[Service, ...]
    time_servers: tuple[str, ...]
    state_dir: str
    raw: dict[str, Any]  # the whole document, for later modules (alerts, ...)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def peer(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name != name)

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]


class _Reader:
    """Typed access to a JSON object that reports the path of what is wrong."""

    def __init__(self, data: Any, where: str) -> None:
        self.data = data
        self.where = where

    def _get(self, key: str, optional: bool) -> Any:
        if not isinstance(self.data, dict):
            raise ConfigError(f"cluster.json: {self.where or 'top level'} must be an object")
        if key not in self.data:
            if optional:
                return None
            raise ConfigError(f"cluster.json: missing {self._at(key)}")
        return self.data[key]

    def _at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def obj(self, key: str) -> _Reader:
        value = self._get(key, False)
        if not isinstance(value, dict):
            raise ConfigError(f"cluster.json: {self._at(key)} must be an object")
        return _Reader(value, self._at(key))

    def text(self, key: str, optional: bool = False) -> Any:
        value = self._get(key, optional)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            raise ConfigError(f"cluster.json: {self._at(key)} must be a non-empty string")
        return value

    def integer(self, key: str) -> int:
        value = self._get(key, False)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"cluster.json: {self._at(key)} must be an integer")
        return value

    def flag(self, key: str) -> bool:
        value = self._get(key, False)
        if not isinstance(value, bool):
            raise ConfigError(f"cluster.json: {self._at(key)} must be true or false")
        return value

    def texts(self, key: str, optional: bool = False) -> tuple[str, ...]:
        value = self._get(key, optional)
        if value is None and optional:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"cluster.json: {self._at(key)} must be a list of strings")
        return tuple(value)

    def items(self, key: str) -> list[_Reader]:
        value = self._get(key, False)
        if not isinstance(value, list):
            raise ConfigError(f"cluster.json: {self._at(key)} must be a list")
        return [_Reader(v, f"{self._at(key)}[{i}]") for i, v in enumerate(value)]


def _link(r: _Reader) -> Link:
    return Link(
        interface=r.text("interface"),
        mac=(r.text("mac", optional=True) or None),
        address=r.text("address"),
        prefix=r.integer("prefix"),
        gateway=r.text("gateway", optional=True),
        dns=r.texts("dns", optional=True),
    )


def _probe(r: _Reader) -> Probe | None:
    raw = r.data.get("probe") if isinstance(r.data, dict) else None
    if raw is None:
        return None
    p = r.obj("probe")
    kinds = [k for k in ("tcp", "udp_sip", "command") if k in p.data]
    if len(kinds) != 1 or len(p.data) != 1:
        raise ConfigError(
            f"cluster.json: {p.where} must have exactly one of tcp, udp_sip, command"
        )
    if kinds[0] == "command":
        return Probe("command", argv=p.texts("command"))
    return Probe(kinds[0], port=p.integer(kinds[0]))


def parse(data: Any) -> Cluster:
    top = _Reader(data, "")
    fmt = top.integer("format")
    if fmt != FORMAT:
        raise ConfigError(f"cluster.json: format {fmt} is not supported (this agent reads {FORMAT})")
    nodes = tuple(
        Node(n.text("name"), n.flag("preferred"), _link(n.obj("public")), _link(n.obj("replication")))
        for n in top.items("nodes")
    )
    if len(nodes) != 2 or len({n.name for n in nodes}) != 2:
        raise ConfigError("cluster.json: nodes must list exactly two nodes with distinct names")
    if sum(n.preferred for n in nodes) != 1:
        raise ConfigError("cluster.json: exactly one node must have preferred: true")
    vip = top.obj("vip")
    d = top.obj("drbd")
    b = d.obj("backing")
    kind = b.text("kind")
    if kind not in ("partition", "disk"):
        raise ConfigError(f"cluster.json: drbd.backing.kind must be partition or disk, not {kind}")
    disks = b.data.get("disks") or {}
    if not isinstance(disks, dict) or not all(isinstance(v, str) for v in disks.values()):
        raise ConfigError("cluster.json: drbd.backing.disks must map node names to paths")
    backing = Backing(kind, b.text("partlabel", optional=True), dict(disks))
    if kind == "partition" and not backing.partlabel:
        raise ConfigError("cluster.json: drbd.backing.partlabel is required for kind partition")
    if kind == "disk" and set(disks) != {n.name for n in nodes}:
        raise ConfigError("cluster.json: drbd.backing.disks must name a disk for every node")
    drbd = Drbd(
        resource=d.text("resource"),
        device=d.text("device"),
        minor=d.integer("minor"),
        backing=backing,
        filesystem=d.text("filesystem"),
        mount=d.text("mount"),
        peer_timeout_s=d.integer("peer_timeout_s"),
    )
    services = tuple(
        Service(s.text("name"), s.text("unit"), s.texts("state"), _probe(s))
        for s in top.items("services")
    )
    for s in services:
        for p in s.state:
            if not p.startswith("/") or p.rstrip("/") in ("", drbd.mount.rstrip("/")):
                raise ConfigError(f"cluster.json: service {s.name}: bad state path {p!r}")
    paths = data.get("paths") or {}
    return Cluster(
        name=top.obj("cluster").text("name"),
        nodes=nodes,
        vip=Vip(vip.text("address"), vip.integer("prefix"), vip.text("interface")),
        drbd=drbd,
        services=services,
        time_servers=top.texts("time_servers", optional=True),
        state_dir=str(paths.get("state_dir") or "/var/lib/cluster"),
        raw=data,
    )


def load(path: Path) -> Cluster:
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from None
    return parse(data)
