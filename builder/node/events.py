"""Health conditions -> events, with the last state in <state_dir>/health.json.

Rules (run every minute by cron, on both nodes):
- A condition is announced once seen on CONFIRM consecutive runs; an announced
  one is "recovered" once absent on CONFIRM consecutive runs.
- Anti-flap: a condition is announced again at the earliest MIN_GAP_S after its
  last announcement. One that keeps coming and going (FLAP_COUNT changes within
  FLAP_WINDOW_S) is announced "(flapping)" without waiting for CONFIRM runs and
  recovers only once clear for MIN_GAP_S. So a flapping link costs one event,
  then reminders, then one "recovered".
- Announced conditions that persist are repeated every alerts.reminder_s.
- The first run after boot (new boot id) or on a missing/unreadable file is a
  baseline: nothing recovers and there is no failover; what is wrong is announced
  like anything new, if it is still there on the next run.
- "failover: X took over" when the VIP arrives on this node between two runs
  after this node saw it held by the peer, or while the peer is gone from the
  LAN (a peer that dies within a minute of its start was never seen holding
  it). So it is reported by the new holder only, and the cluster's first
  start, both nodes up, is no failover.
- Conditions both nodes see (links, DRBD connection, resync) are journaled on
  both but mailed by one: the VIP holder, or the standby when the holder is
  gone from the LAN or nobody holds the VIP (health.reports_shared). One real
  event, one mail.
Times for these rules come from ctx.clock (monotonic, per boot, hence the reset
at boot); wall-clock strings are only for people.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from builder.node import health, mail
from builder.node.config import Cluster
from builder.node.context import Ctx, atomic_write
from builder.node.errors import NodeError
from builder.node.health import INFO, SEVERITIES, WARNING, Condition
from builder.node.provision import load_state
from builder.node.state import State

log = logging.getLogger("clusterctl.events")

CONFIRM = 2
MIN_GAP_S = 600
FLAP_WINDOW_S = 1800
FLAP_COUNT = 4
MAX_UNSENT = 50
BOOT_ID = "/proc/sys/kernel/random/boot_id"
FORMAT = 1


def wall() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class Event:
    kind: str  # "new" | "recovered" | "reminder" | "failover"
    severity: str
    text: str
    key: str = ""
    at: str = field(default_factory=wall)
    shared: bool = False  # seen by both nodes: mailed by the reporter only (health.reports_shared)


@dataclass
class Outcome:
    reading: health.Reading
    events: list[Event]
    baseline: bool
    mail: mail.Sent | None  # None: nothing mailed (no events, or alerts: null)


def state_path(ctx: Ctx, cluster: Cluster) -> Path:
    return ctx.path(f"{cluster.state_dir}/health.json")


def load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing or foreign: start over with a baseline
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def boot_id(ctx: Ctx) -> str:
    try:
        return ctx.path(BOOT_ID).read_text().strip()
    except OSError:
        return ""


def _ago(seconds: float) -> str:
    m = int(seconds // 60)
    return f"{m // 60} h {m % 60} min" if m >= 60 else f"{m} min"


def step(conds: dict[str, dict[str, Any]], seen: dict[str, Condition], now: float,
         reminder_s: int) -> list[Event]:
    """Advance every condition's record by one run; return the events it earns."""
    events: list[Event] = []
    for key in sorted(set(conds) | set(seen)):
        c = seen.get(key)
        first = key not in conds
        s = conds.setdefault(key, {"present": False, "streak": 0, "announced": False,
                                   "flips": [], "changed_at": now, "announced_at": None})
        present = c is not None
        if c is not None:
            s.update(severity=c.severity, message=c.message, recovered=c.recovered, shared=c.shared)
        if present != s["present"]:
            s.update(present=present, streak=1, changed_at=now)
            # Flapping is coming back: a first appearance (a node still settling
            # after its boot) is no flip, or boot + one cut + its heal looked
            # like a flap and the "recovered" mail waited MIN_GAP_S.
            if not first:
                s["flips"].append(now)
            if present and not s["announced"]:
                s.update(since=now, since_wall=wall())
        else:
            s["streak"] += 1
        s["flips"] = [t for t in s["flips"] if now - t < FLAP_WINDOW_S]
        flapping = len(s["flips"]) >= FLAP_COUNT
        if not s["announced"]:
            again_too_soon = s["announced_at"] is not None and now - s["announced_at"] < MIN_GAP_S
            if present and not again_too_soon and (s["streak"] >= CONFIRM or flapping):
                tail = " (flapping)" if s["streak"] < CONFIRM else ""
                events.append(Event("new", s["severity"], s["message"] + tail, key, shared=s["shared"]))
                s.update(announced=True, announced_at=now, notified_at=now)
        elif not present:
            # A flapping condition recovers only after MIN_GAP_S of calm.
            calm = not flapping or now - s["changed_at"] >= MIN_GAP_S
            if s["streak"] >= CONFIRM and calm:
                events.append(Event("recovered", INFO, s["recovered"], key, shared=s.get("shared", False)))
                s["announced"] = False
        elif reminder_s > 0 and now - s["notified_at"] >= reminder_s:
            text = f"still: {s['message']} (for {_ago(now - s['since'])})"
            events.append(Event("reminder", s["severity"], text, key, shared=s.get("shared", False)))
            s["notified_at"] = now
        if not present and not s["announced"] and not s["flips"]:
            del conds[key]  # quiet for a whole flap window: forget it
    return events


def journal(ctx: Ctx, ev: Event) -> None:
    """Always into the journal, also under cron (whose stderr would become mail)."""
    level = logging.INFO if ev.severity == INFO else logging.WARNING
    log.log(level, "EVENT %s %s", ev.severity, ev.text)
    prio = "user.info" if level == logging.INFO else "user.warning"
    ctx.run(["logger", "-t", "clusterctl", "-p", prio, "--", f"EVENT {ev.severity} {ev.text}"], check=False)


def subject(cluster: Cluster, node: str, events: list[Event]) -> str:
    first = sorted(events, key=lambda e: SEVERITIES.index(e.severity))[0]
    more = f" (+{len(events) - 1} more)" if len(events) > 1 else ""
    return f"[{cluster.name}] {node}: {first.text}{more}"


def body(node: str, events: list[Event], reading: health.Reading) -> str:
    lines = [f"clusterctl health on {node}:", ""]
    lines += [f"{e.at}  {e.severity:<8} {e.text}" for e in events]
    lines += ["", "Now: " + ("this node holds the VIP (active)" if reading.holder else "standby")]
    lines += [f"  {c.severity:<8} {c.message}" for c in reading.conditions] or ["  no problems seen"]
    lines += ["", "Details: clusterctl status (on either node)."]
    return "\n".join(lines) + "\n"


Sender = Callable[[Ctx, mail.Alerts, str, str], mail.Sent]


def pending_partner(ctx: Ctx, cluster: Cluster) -> str | None:
    """The partner provision.start() waited for in vain at this node's first boot."""
    partner = load_state(ctx, cluster).data.get("partner")
    if isinstance(partner, dict) and partner.get("finished") is False:
        return str(partner.get("name"))
    return None


def run(ctx: Ctx, cluster: Cluster, send: Sender = mail.send) -> Outcome:
    now = ctx.clock()
    me = health.node_name(ctx, cluster)
    path = state_path(ctx, cluster)
    prev = load(path)
    boot = boot_id(ctx)
    baseline = prev is None or prev.get("boot_id") != boot or prev.get("node") != me
    st: dict[str, Any] = {} if baseline or prev is None else prev
    alerts = mail.alerts(cluster)
    partner_seen = bool((prev or {}).get("partner_seen"))  # kept across boots
    reading = health.check(ctx, cluster, me, seen_connected=bool(st.get("seen_connected")),
                           partner_pending=None if partner_seen else pending_partner(ctx, cluster))
    partner_seen = partner_seen or reading.holder or reading.vip_elsewhere
    conds: dict[str, dict[str, Any]] = st.get("conditions") or {}
    events: list[Event] = []
    # A failover is the VIP arriving here after this node saw it on the peer, or
    # with the peer gone; the first start of the cluster (VIP nowhere before,
    # the peer up) is no failover.
    peer_gone = any(c.key == "peer.public" for c in reading.conditions)
    if not baseline and reading.holder and not st.get("holder") and (st.get("peer_held") or peer_gone):
        if any(n.name == me and n.preferred for n in cluster.nodes) and not peer_gone:  # auto_failback: the peer handed them back
            events.append(Event("failover", INFO, f"failback: {me} took the services back (VIP {cluster.vip.address})"))
        else:
            events.append(Event("failover", WARNING, f"failover: {me} took over (VIP {cluster.vip.address})"))
    peer_held = not reading.holder and (bool(st.get("peer_held")) or reading.vip_elsewhere)
    events += step(conds, {c.key: c for c in reading.conditions}, now,
                   alerts.reminder_s if alerts else 3600)
    for ev in events:
        journal(ctx, ev)
    unsent: list[dict[str, Any]] = (prev or {}).get("unsent") or []  # kept across boots
    mailed = [e for e in events if reading.reporter or not e.shared]  # the peer mails the rest
    outbox = [Event(**e) for e in unsent] + mailed if alerts else []
    sent = None
    if alerts and outbox:
        sent = send(ctx, alerts, subject(cluster, me, outbox), body(me, outbox, reading))
        if not sent.ok:
            log.warning("alert mail not sent (%s; %s): will retry next run", sent.cause, sent.hint)
        unsent = [] if sent.ok else [asdict(e) for e in outbox][-MAX_UNSENT:]
    last = st.get("last_event")
    if events:
        last = {"at": events[-1].at, "text": events[-1].text}
    doc = {
        "format": FORMAT, "node": me, "boot_id": boot, "checked": wall(), "holder": reading.holder,
        "peer_held": peer_held,
        "seen_connected": bool(st.get("seen_connected")) or reading.drbd_connected,
        "conditions": conds, "last_event": last, "unsent": unsent, "partner_seen": partner_seen,
    }
    atomic_write(path, json.dumps(doc, indent=2, sort_keys=True) + "\n", 0o644)
    return Outcome(reading, events, baseline, sent)


def status_section(ctx: Ctx, cluster: Cluster) -> dict[str, Any]:
    """Read-only view of health.json for `clusterctl status`."""
    doc = load(state_path(ctx, cluster))
    if doc is None:
        return {"checked": None, "conditions": [], "last_event": None}
    current = [
        {"key": k, "severity": v.get("severity"), "message": v.get("message"),
         "since": v.get("since_wall"), "announced": v.get("announced")}
        for k, v in sorted((doc.get("conditions") or {}).items()) if v.get("present")
    ]
    # Gone but not yet announced as recovered (CONFIRM runs, or calm after flapping).
    recovering = sorted(k for k, v in (doc.get("conditions") or {}).items()
                        if v.get("announced") and not v.get("present"))
    return {"checked": doc.get("checked"), "healthy": not current,
            "conditions": current, "recovering": recovering, "last_event": doc.get("last_event"),
            "unsent_events": len(doc.get("unsent") or [])}


def summary(outcome: Outcome) -> str:
    r = outcome.reading
    role = "active (holds the VIP)" if r.holder else "standby"
    lines = [f"{r.node}: {role}" + (" (baseline)" if outcome.baseline else "")]
    lines += [f"  {c.severity:<8} {c.message}" for c in r.conditions] or ["  healthy"]
    lines += [f"event: {e.text}" for e in outcome.events]
    if outcome.mail is not None:
        lines.append("mail: sent" if outcome.mail.ok else f"mail: NOT sent: {outcome.mail.cause}")
    return "\n".join(lines)


# -- a failed first boot -------------------------------------------------------
# Provisioning's own event: the state file's `error` ({step, message, fix}) is
# what `clusterctl status` and the status port show; it is said on the console
# and in the journal, and mailed once per distinct failure (the same failure on
# every later boot is not mailed again; the health cron retries an unsent mail).

CONSOLE = "/dev/console"


def failure_banner(node: str, err: dict[str, str]) -> str:
    return (f"\n*** clusterctl: first boot of {node} FAILED at step {err['step']} ***\n"
            f"*** error: {err['message']}\n*** fix: {err['fix']}\n"
            f"*** details: clusterctl status; journalctl -u cluster-firstboot.service\n")


def say(ctx: Ctx, text: str) -> None:
    """Journal (stderr under systemd, and syslog at crit) and the console."""
    for line in text.strip().splitlines():
        log.critical("%s", line)
    ctx.run(["logger", "-t", "clusterctl", "-p", "user.crit", "--", " ".join(text.split())], check=False)
    console = ctx.path(CONSOLE)
    if not console.exists():
        return  # no console (a container): the journal has it
    try:
        with open(console, "a") as f:
            f.write(text)
    except OSError as e:
        log.debug("console %s: %s", console, e)


def failure_subject(cluster: Cluster, node: str, err: dict[str, str]) -> str:
    return f"[{cluster.name}] {node}: first boot FAILED at step {err['step']}: {err['message']}"


def failure_body(cluster: Cluster, node: str, err: dict[str, str]) -> str:
    return (f"The first boot of {node} (cluster {cluster.name}) stopped at step {err['step']}.\n\n"
            f"Error: {err['message']}\n\nFix: {err['fix']}\n\n"
            f"Until it finishes, {node} does not run heartbeat: the cluster has at most one node.\n"
            f"Details on {node}: clusterctl status; journalctl -u cluster-firstboot.service\n")


def mail_failure(ctx: Ctx, cluster: Cluster, state: State) -> bool:
    """Send the failure mail unless it went already. True when it has gone (now or before)."""
    err = state.data.get("error")
    if not isinstance(err, dict) or err.get("mailed"):
        return bool(isinstance(err, dict) and err.get("mailed"))
    a = mail.alerts(cluster)
    if a is None:
        return False
    node = state.node or "unknown node"
    sent = mail.send(ctx, a, failure_subject(cluster, node, err), failure_body(cluster, node, err))
    if not sent.ok:
        log.warning("first-boot failure mail not sent (%s; %s): the health check retries it", sent.cause, sent.hint)
        return False
    err["mailed"] = wall()
    state.save()
    return True


def announce_failure(ctx: Ctx, cluster: Cluster, state: State) -> None:
    """Provisioning stopped with `state.data['error']` recorded: tell everyone."""
    err = state.data.get("error")
    if not isinstance(err, dict):
        return
    say(ctx, failure_banner(state.node or "this node", err))
    try:
        mail_failure(ctx, cluster, state)
    except NodeError as e:  # e.g. a bad alerts section: the console and journal have it
        log.warning("first-boot failure mail not sent: %s", e)
