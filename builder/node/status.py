"""`clusterctl status`: a report made of named sections.

Each section is a function (ctx, cluster) -> JSON-able dict, registered in
SECTIONS in display order; a later module (health, alerts) adds its own with
`register()`. A section that fails shows its error instead of hiding the rest.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable
from typing import Any

from builder.node import drbd, identity, probes
from builder.node.config import Cluster
from builder.node.context import Ctx
from builder.node.errors import NodeError
from builder.node.host import local_addresses
from builder.node.provision import load_state

log = logging.getLogger("clusterctl")

Section = Callable[[Ctx, Cluster], dict[str, Any]]
SECTIONS: list[tuple[str, Section]] = []


def register(name: str, fn: Section) -> None:
    """Add (or replace, keeping its place) a status section."""
    for i, (n, _) in enumerate(SECTIONS):
        if n == name:
            SECTIONS[i] = (name, fn)
            return
    SECTIONS.append((name, fn))


def node_section(ctx: Ctx, cluster: Cluster) -> dict[str, Any]:
    st = load_state(ctx, cluster)
    if st.node:
        name, source = st.node, "state file"
    else:
        try:
            ident = identity.resolve(ctx, cluster)
            name, source = ident.name, ident.source
        except NodeError:
            name, source = None, "unknown"
    node = cluster.node(name) if name else None
    return {
        "name": name,
        "source": source,
        "preferred": node.preferred if node else None,
        "cluster": cluster.name,
    }


def provision_section(ctx: Ctx, cluster: Cluster) -> dict[str, Any]:
    st = load_state(ctx, cluster)
    error = st.data.get("error")
    return {
        "complete": st.complete,
        "failed": bool(error) and not st.complete,
        "done": st.done,
        "next": st.next_step,
        "error": error,  # {step, message, fix, since, mailed}: why the first boot stopped
        "partner": st.data.get("partner"),  # non-preferred node: did the preferred one finish?
        "updated": st.data.get("updated"),
    }


def drbd_section(ctx: Ctx, cluster: Cluster) -> dict[str, Any]:
    st = drbd.status(ctx, cluster.drbd.minor)
    return {"resource": cluster.drbd.resource, "device": cluster.drbd.device, **st.as_dict()}


def _active(ctx: Ctx, unit: str) -> str:
    r = ctx.run(["systemctl", "is-active", unit], check=False)
    return r.stdout.strip() or f"unknown (exit {r.returncode})"


def heartbeat_section(ctx: Ctx, cluster: Cluster) -> dict[str, Any]:
    state = _active(ctx, "heartbeat.service")
    return {"running": state == "active", "state": state}


def vip_section(ctx: Ctx, cluster: Cluster) -> dict[str, Any]:
    r = ctx.run(["ip", "-o", "addr", "show"], check=False)
    addrs = local_addresses(r.stdout)
    vip = str(ipaddress.ip_address(cluster.vip.address))
    return {
        "address": vip,
        "held_here": vip in addrs,
        "interface": addrs.get(vip),
    }


def services_section(ctx: Ctx, cluster: Cluster) -> dict[str, Any]:
    out = []
    for svc in cluster.services:
        entry: dict[str, Any] = {"name": svc.name, "unit": svc.unit, "state": _active(ctx, svc.unit)}
        if svc.probe:
            res = probes.run(ctx, svc.probe)
            entry["probe"] = {"kind": svc.probe.kind, "ok": res.ok, "detail": res.detail}
        else:
            entry["probe"] = None
        out.append(entry)
    return {"services": out}


for _name, _fn in (
    ("node", node_section),
    ("provision", provision_section),
    ("drbd", drbd_section),
    ("heartbeat", heartbeat_section),
    ("vip", vip_section),
    ("services", services_section),
):
    register(_name, _fn)


def collect(ctx: Ctx, cluster: Cluster) -> dict[str, Any]:
    report: dict[str, Any] = {"format": 1}
    for name, fn in SECTIONS:
        try:
            report[name] = fn(ctx, cluster)
        except Exception as e:  # one broken section must not hide the others
            log.debug("status section %s failed", name, exc_info=True)
            report[name] = {"error": f"{type(e).__name__}: {e}"}
    return report


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def headline(report: dict[str, Any]) -> list[str]:
    """A stopped first boot comes first, in words, with its fix."""
    prov = report.get("provision")
    err = prov.get("error") if isinstance(prov, dict) and prov.get("failed") else None
    if not isinstance(err, dict):
        return []
    return [f"FIRST BOOT FAILED at step {err.get('step')}: {err.get('message')}", f"  fix: {err.get('fix')}"]


def render(report: dict[str, Any]) -> str:
    lines: list[str] = headline(report)
    for name, body in report.items():
        if not isinstance(body, dict):
            continue
        if name == "services" and "services" in body:
            lines.append("services:")
            for s in body["services"]:
                probe = s.get("probe")
                health = "no probe" if not probe else (
                    ("ok " if probe["ok"] else "FAIL ") + probe["detail"]
                )
                lines.append(f"  {s['name']:<12} {s['state']:<10} {health}")
            continue
        fields = "  ".join(f"{k}={_fmt(v)}" for k, v in body.items())
        lines.append(f"{name}: {fields}")
    return "\n".join(lines)


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False)
