"""Profile + secrets -> the staging tree every node gets.

OUTPUTS is the whole list of files: template, destination, mode, and whether it
holds a secret. Templates live under overlays/ laid out as the node's
filesystem; they only loop and branch over the model (StrictUndefined: a typo in
a template is an error, not an empty string).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath
from typing import Any

import jinja2

from builder import templates, templating
from builder.profile.model import Link, Node, Profile, PublicLink, Service, ifname
from builder.profile.secrets import Secrets
from builder.profile.types import format_duration
from builder.staging import StagedFile, Tree

OVERLAYS = templates.folder("overlays")
AGENT_DIR = "/usr/lib/cluster-agent"
def backing_disk(p: Profile, node: Node) -> str:
    if p.drbd.backing.kind == "disk":
        return p.drbd.backing.disks[node.name]
    return f"/dev/disk/by-partlabel/{p.drbd.partlabel}"


@dataclass(frozen=True)
class Output:
    template: str  # under overlays/
    dest: str
    mode: int = 0o644
    secret: bool = False
    extra: tuple[tuple[str, Any], ...] = ()  # extra template variables


def outputs(p: Profile) -> Iterator[Output]:
    res = p.drbd.resource
    yield Output("base/etc/drbd.d/global_common.conf.j2", "/etc/drbd.d/global_common.conf")
    yield Output("base/etc/drbd.d/resource.res.j2", f"/etc/drbd.d/{res}.res", 0o600, secret=True)
    yield Output("base/etc/ha.d/ha.cf.j2", "/etc/ha.d/ha.cf")
    yield Output("base/etc/ha.d/haresources.j2", "/etc/ha.d/haresources")
    yield Output("base/etc/ha.d/authkeys.j2", "/etc/ha.d/authkeys", 0o600, secret=True)
    for svc in p.services:
        setup = setup_path(svc)
        yield Output("base/etc/ha.d/resource.d/service.j2", f"/etc/ha.d/resource.d/{svc.name}", 0o755,
                     extra=(("svc", svc), ("setup", setup)))
        if setup:
            yield Output(f"services/{svc.name}/setup.sh.j2", setup, 0o700, secret=True, extra=(("svc", svc),))
    yield Output("base/etc/cron.d/cluster-health.j2", "/etc/cron.d/cluster-health")
    yield Output("base/etc/chrony/sources.d/cluster.sources.j2", "/etc/chrony/sources.d/cluster.sources")
    if p.alerts:
        yield Output("base/etc/msmtprc.j2", "/etc/msmtprc", 0o600, secret=True)
        yield Output("base/etc/cluster/aliases.j2", "/etc/cluster/aliases")
    for node in p.nodes:
        for kind, link in (("public", node.public), ("replication", node.replication)):
            if link.mac:
                yield Output("base/etc/systemd/network/cluster.link.j2",
                             f"/etc/systemd/network/10-cluster-{node.name}-{kind}.link",
                             extra=(("node", node), ("kind", kind), ("link", link)))
    if p.drbd.backing.kind == "partition":
        yield Output("base/usr/lib/repart.d/drbd.conf.j2", f"/usr/lib/repart.d/50-drbd-{res}.conf")
    yield Output("base/usr/lib/systemd/system/cluster-firstboot.service.j2",
                 "/usr/lib/systemd/system/cluster-firstboot.service")
    yield Output("base/usr/lib/systemd/system/cluster-status-port.service.j2",
                 "/usr/lib/systemd/system/cluster-status-port.service")
    yield Output("base/usr/lib/systemd/system-preset/cluster.preset.j2",
                 f"/usr/lib/systemd/system-preset/50-{p.cluster.name}.preset")
    yield Output("base/usr/sbin/clusterctl.j2", "/usr/sbin/clusterctl", 0o755)
    for svc in p.services:
        yield from _service_overlay(svc)


def setup_path(svc: Service) -> str | None:
    """A service's once-per-cluster setup (overlays/services/<name>/setup.sh.j2), if it has one.

    Its resource script runs it after the service's first start on the replicated
    filesystem, and leaves a marker there so it never runs again, on either node.
    """
    if (OVERLAYS / "services" / svc.name / "setup.sh.j2").is_file():
        return f"/usr/lib/cluster/setup/{svc.name}"
    return None


def _service_overlay(svc: Service) -> Iterator[Output]:
    """Optional per-service files: overlays/services/<name>/<node path>.j2 (e.g. kamailio-local.cfg)."""
    root = OVERLAYS / "services" / svc.name
    if not root.is_dir():
        return
    stack = [(root, PurePosixPath("/"))]
    while stack:
        folder, dest = stack.pop()
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_dir():
                stack.append((entry, dest / entry.name))
            elif entry.name.endswith(".j2") and entry.name != "setup.sh.j2":
                rel = f"services/{svc.name}{dest / entry.name}"
                yield Output(rel, str(dest / entry.name.removesuffix(".j2")), extra=(("svc", svc),))


def cluster_json(p: Profile) -> dict[str, Any]:
    """/etc/cluster/cluster.json: the node agent's only input (docs/cluster-json.md)."""

    def link(lk: Link, kind: str) -> dict[str, Any]:
        return {
            "interface": ifname(lk, kind),
            "mac": lk.mac,
            "address": str(lk.address.ip),
            "prefix": lk.address.network.prefixlen,
            "gateway": str(lk.gateway) if isinstance(lk, PublicLink) and lk.gateway else None,
            "dns": [str(x) for x in lk.dns] if isinstance(lk, PublicLink) else [],
        }

    d = p.drbd
    return {
        "format": 1,
        "cluster": {"name": p.cluster.name, "stack": p.cluster.stack,
                    "release": p.cluster.release, "version": p.cluster.version},
        "nodes": [
            {"name": n.name, "preferred": i == 0,
             "public": link(n.public, "public"), "replication": link(n.replication, "replication")}
            for i, n in enumerate(p.nodes)
        ],
        "vip": {"address": str(p.vip.address.ip), "prefix": p.vip.address.network.prefixlen,
                "interface": ifname(p.preferred.public, "public")},
        "drbd": {
            "resource": d.resource, "device": f"/dev/drbd{d.minor}", "minor": d.minor, "port": d.port,
            "backing": {"kind": d.backing.kind, "partlabel": p.drbd.partlabel,
                        "size_bytes": d.backing.size, "disks": dict(d.backing.disks)},
            "filesystem": d.filesystem, "mount": d.mount, "peer_timeout_s": d.peer_timeout // 1000,
        },
        "heartbeat": {"keepalive_ms": p.heartbeat.keepalive, "deadtime_ms": p.heartbeat.deadtime,
                      "initdead_ms": p.heartbeat.initdead, "auto_failback": p.heartbeat.auto_failback},
        "services": [
            {"name": s.name, "unit": s.unit, "state": list(s.state),
             "probe": s.probe.model_dump(exclude_none=True) if s.probe else None}
            for s in p.services
        ],
        "alerts": None if not p.alerts else {
            "recipients": list(p.alerts.recipients), "sender": p.alerts.sender,
            "reminder_s": p.alerts.reminder // 1000,
        },
        "time_servers": list(p.time_servers),
        "paths": {"state_dir": "/var/lib/cluster", "msmtprc": "/etc/msmtprc", "aliases": "/etc/cluster/aliases"},
    }


def _environment() -> jinja2.Environment:
    return templating.environment(jinja2.FileSystemLoader(OVERLAYS))


def _agent_files() -> Iterator[StagedFile]:
    """The node agent's source, shipped as-is into its private library path."""
    pkg = resources.files("builder")
    yield StagedFile(PurePosixPath(f"{AGENT_DIR}/builder/__init__.py"), (pkg / "__init__.py").read_bytes())
    node = pkg / "node"
    for entry in sorted(node.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".py"):
            yield StagedFile(PurePosixPath(f"{AGENT_DIR}/builder/node/{entry.name}"), entry.read_bytes())


def render(p: Profile, s: Secrets) -> Tree:
    env = _environment()
    base = {
        "p": p, "s": s, "d": p.drbd, "hb": p.heartbeat, "a": p.alerts,
        "fmt": format_duration, "ifname": ifname,
        "backing_disk": lambda n: backing_disk(p, n),
        "service_names": [svc.name for svc in p.services],
    }
    files = [
        StagedFile(PurePosixPath(o.dest), env.get_template(o.template).render(base | dict(o.extra)).encode(),
                   o.mode, o.secret)
        for o in outputs(p)
    ]
    files.append(StagedFile(PurePosixPath("/etc/cluster/cluster.json"),
                            (json.dumps(cluster_json(p), indent=2) + "\n").encode()))
    files.extend(_agent_files())
    return Tree(tuple(sorted(files, key=lambda f: str(f.path))))
