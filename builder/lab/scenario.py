"""`builder lab test`: the cluster proven from the outside, as a short story.

Every check goes through the VIP from the client end with real clients, and
waits through poll(). Figures go to the report; a failed check raises
CheckFailed naming it and is never retried.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from builder.lab import clients
from builder.lab.cluster import Cluster, Node
from builder.lab.poll import CheckFailed, poll
from builder.lab.power_cuts import first_boot_power_cuts

log = logging.getLogger("builder")

BOOT = 1800  # first boot of two TCG guests, provisioning and DRBD included
TAKEOVER = 600
Report = dict[str, Any]


def ready(node: Node, active: bool) -> bool:
    st = node.status()
    drbd = st.get("drbd", {})
    ok = (st.get("provision", {}).get("complete") and drbd.get("cs") == "Connected"
          and drbd.get("disk") == drbd.get("peer_disk") == "UpToDate" and st.get("heartbeat", {}).get("running"))
    if active:
        ok = ok and st.get("vip", {}).get("held_here") and all(
            s["state"] == "active" for s in st.get("services", {}).get("services", []))
    return bool(ok)


def services_answer(cluster: Cluster) -> dict[str, Callable[[], bool]]:
    net, vip, pw = cluster.net, cluster.vip, cluster.secrets.db_password
    return {
        "http": lambda: clients.http_status(net, vip) == 200,
        "sip": lambda: clients.sip_options(net, vip).startswith("SIP/2.0 200"),
        "sql": lambda: clients.sql(net, vip, pw, "SELECT 1") == "1",
    }


def wait_services(cluster: Cluster, since: float, timeout: float) -> dict[str, float]:
    """Seconds from `since` until each service answered on the VIP."""
    back = {}
    for name, answers in services_answer(cluster).items():
        poll(answers, f"{name} answers on the VIP {cluster.vip}", timeout=timeout, every=1)
        back[name] = round(time.monotonic() - since, 1)
    return back


def rows_check(cluster: Cluster, inserter: clients.Inserter, report: Report, key: str) -> None:
    # Acked rows first, then the table: the inserter keeps going, and a row acked
    # after the SELECT began is not in its answer (a first run "lost" one that way).
    acked = set(inserter.acked)
    present_text = clients.sql(cluster.net, cluster.vip, cluster.secrets.db_password, "SELECT n FROM acked_rows")
    if not present_text:
        raise CheckFailed(f"{key}: the rows could not be read back through the VIP")
    present = {int(x) for x in present_text.split()}
    lost = sorted(acked - present)
    report[key] = {"rows_acked": len(acked), "rows_present": len(present & acked), "rows_lost": len(lost)}
    if lost:
        raise CheckFailed(f"{len(lost)} acknowledged rows missing after {key}: {lost[:10]}")


def detection(survivor: Node, killed: str, kill_wall: float) -> tuple[float | None, dict[str, float]]:
    """From the survivor's heartbeat journal: kill -> 'is dead', and each resource's start time."""
    lines = survivor.journal("heartbeat.service", kill_wall - 1)
    dead = next((t for t, msg in lines if f"node {killed}: is dead" in msg), None)
    starts: dict[str, float] = {}
    # Not `-u heartbeat`: journald files some of ResourceManager's lines under no unit.
    for t, msg in survivor.journal("resource.d", kill_wall - 1, verb="grep"):
        # heartbeat logs "Running /etc/ha.d//resource.d/IPaddr2 ... start" (sic: two slashes)
        m = re.search(r"Running /etc/ha\.d/+resource\.d/(\S+) .*\bstart$", msg)
        if m:
            starts.setdefault(m.group(1), round(t - kill_wall, 2))
    return (round(dead - kill_wall, 2) if dead else None), starts


EVENT_LINE = re.compile(r"^\S+ {2}(?:critical|warning|info) +(.+)$", re.MULTILINE)
MAIL = 420  # a health event needs two cron runs (a minute apart) to be confirmed, then msmtp


def mail_texts(mail: dict[str, Any]) -> list[str]:
    """What one mail announces: its subject and, in clusterctl's, each event line."""
    return [str(mail.get("subject", "")), *EVENT_LINE.findall(str(mail.get("body", "")))]


def mails_saying(cluster: Cluster, text: str, since: int = 0) -> list[dict[str, Any]]:
    """The mails the relay got after the first `since` that announce `text`."""
    assert cluster.mail
    return [m for m in cluster.mail.messages()[since:] if any(text in t for t in mail_texts(m))]


def expect_mail(cluster: Cluster, text: str, since: int, t0: float, what: str) -> float:
    """Wait for the relay to get a mail announcing `text`; seconds since t0."""
    poll(lambda: mails_saying(cluster, text, since), f"the relay got a mail saying {text!r} ({what})",
         timeout=MAIL, every=5)
    return round(time.monotonic() - t0, 1)


def exactly_once(cluster: Cluster, texts: list[str], since: int, phase: str) -> None:
    """One real event, one mail: both nodes see a cut link, only one may say so."""
    for text in texts:
        got = mails_saying(cluster, text, since)
        if len(got) != 1:
            subjects = [m.get("subject") for m in got]
            raise CheckFailed(f"{phase}: {len(got)} mails say {text!r}, expected exactly 1: {subjects}")


def health_ran_after(node: Node, host_time: float) -> bool:
    """The node's cron health check finished after this host-clock time."""
    checked = node.status().get("health", {}).get("checked")
    if not checked:
        return False
    return datetime.strptime(checked, "%Y-%m-%dT%H:%M:%S%z").timestamp() - node.clock_offset > host_time


def come_up(cluster: Cluster, report: Report, *, boot: bool = True, power_cuts: bool = False) -> None:
    """Both nodes provision themselves; the preferred one serves on the VIP. With
    power_cuts, each node loses power at several points of its first boot first."""
    a, b = cluster.preferred, cluster.peer
    t0 = time.monotonic()
    if boot:
        cluster.up()
    if boot and power_cuts:
        report["power_cuts"] = first_boot_power_cuts(cluster)
    poll(lambda: ready(a, active=True) and ready(b, active=False),
         f"both nodes provisioned, DRBD Connected UpToDate/UpToDate, {a.name} active", timeout=BOOT, every=5)
    report["ready_s"] = round(time.monotonic() - t0, 1)
    report["out_of_sync_kib_at_ready"] = {n.name: n.status().get("drbd", {}).get("out_of_sync_kib") for n in (a, b)}
    wait_services(cluster, time.monotonic(), timeout=120)
    if cluster.vip_holder() is not a:
        raise CheckFailed(f"the VIP is not on the preferred node {a.name}")
    if cluster.site.plan.serves_time:  # the profile's DNS and time servers work as on a real LAN
        servers = {str(x.ip) for x in cluster.site.plan.time_addresses}
        poll(lambda: all(n.status().get("time", {}).get("source") in servers for n in (a, b)),
             f"both nodes' clocks synchronised to the site's time server {', '.join(sorted(servers))}",
             timeout=300, every=5)
        report["time_synchronised_s"] = round(time.monotonic() - t0, 1)


def itemise(resources: dict[str, float], dead_s: float, failover_s: float) -> dict[str, float]:
    """Takeover per resource, from heartbeat's start times: each lasts until the next starts."""
    order = sorted(resources.items(), key=lambda kv: kv[1])
    ends = [t for _, t in order[1:]] + [failover_s]
    out = {"wait_before_first_s": round(order[0][1] - dead_s, 2)} if order else {}
    # The last one (MailTo) may start after the services already answer: 0, not negative.
    out.update({name: round(max(end, start) - start, 2) for (name, start), end in zip(order, ends, strict=True)})
    return out


def hard_failover(cluster: Cluster) -> tuple[dict[str, Any], float]:
    """SIGKILL the preferred node's QEMU (a power cut); measure until every service
    answers on the VIP from the peer. Returns the figures and the kill's monotonic time."""
    a, b = cluster.preferred, cluster.peer
    b.status()  # fresh clock offset of the survivor
    kill_wall, killed_at = time.time(), a.vm.kill()
    poll(lambda: cluster.vip_holder() is b, f"{b.name} holds the VIP", timeout=TAKEOVER, every=1)
    vip_s = round(time.monotonic() - killed_at, 1)
    back = wait_services(cluster, killed_at, timeout=TAKEOVER)
    failover = max(back.values())
    dead_s, resources = detection(b, a.name, kill_wall)
    figures = {"failover_s": failover, "detection_s": dead_s,
               "takeover_s": round(failover - dead_s, 1) if dead_s is not None else None,
               "vip_s": vip_s, "services_back_s": back, "resource_start_s": resources,
               "takeover_by_resource_s": itemise(resources, dead_s, failover) if dead_s is not None else {}}
    return figures, killed_at


def run(cluster: Cluster, report: Report, *, boot: bool = True, power_cuts: bool = True) -> None:
    """The whole story; boot=False tests a lab that `builder lab up` started."""
    a, b = cluster.preferred, cluster.peer
    come_up(cluster, report, boot=boot, power_cuts=power_cuts)

    inserter = clients.Inserter(cluster.net, cluster.vip, cluster.secrets.db_password)
    inserter.start()
    poll(lambda: len(inserter.acked) >= 20, "20 rows inserted through the VIP", timeout=120, every=1)

    # Hard failover: pull the preferred node's plug.
    mail_mark = len(cluster.mail.messages()) if cluster.mail else 0
    report["failover"], killed_at = hard_failover(cluster)
    poll(more_rows(inserter), "inserts resume through the VIP", timeout=TAKEOVER, every=2)
    rows_check(cluster, inserter, report, "after_failover")
    if cluster.mail:  # the new holder's health check, and heartbeat's MailTo at takeover
        said = f"failover: {b.name} took over"
        report["failover"]["mail_s"] = expect_mail(cluster, said, mail_mark, killed_at, "hard failover")
        exactly_once(cluster, [said, "Takeover in progress"], mail_mark, "hard failover")

    # Rejoin: the killed node boots again, resyncs the delta, and takes its services back.
    oos_kb = b.status().get("drbd", {}).get("out_of_sync_kib") or 0
    mail_mark = len(cluster.mail.messages()) if cluster.mail else 0
    rejoin = time.monotonic()
    a.vm.start()
    poll(lambda: ready(b, active=False) and ready(a, active=True),
         f"{a.name} rejoined, resynced and took the services back", timeout=BOOT, every=5)
    report["rejoin"] = {"failback_s": round(time.monotonic() - rejoin, 1), "resync_kb": oos_kb}
    poll(more_rows(inserter), "inserts continue after failback", timeout=TAKEOVER, every=2)
    inserter.stop()
    rows_check(cluster, inserter, report, "after_failback")
    # Let both health checks run once more, so what they say of the failback is
    # sent before the next story starts counting mails.
    settled = time.time()
    poll(lambda: health_ran_after(a, settled) and health_ran_after(b, settled),
         "both nodes' health checks ran after the failback", timeout=MAIL, every=5)
    if cluster.mail:  # heartbeat's MailTo announces the failback
        exactly_once(cluster, ["Takeover in progress"], mail_mark, "failback")

    # Replication link cut while both run: no failover, no split brain, one mail; healing resyncs.
    res = cluster.profile.drbd.resource
    mail_mark = len(cluster.mail.messages()) if cluster.mail else 0
    cut = time.monotonic()
    cluster.net.set_link(a.taps["replication"], False)
    poll(lambda: a.status().get("drbd", {}).get("cs") != "Connected", "DRBD notices the cut", timeout=180, every=3)
    wait_services(cluster, time.monotonic(), timeout=60)
    report["link_cut"] = {}
    if cluster.mail:  # the cut lasts until the operator has been told
        report["link_cut"]["mail_s"] = expect_mail(cluster, f"DRBD {res} disconnected", mail_mark, cut, "link cut")
    if cluster.vip_holder() is not a:
        raise CheckFailed("the VIP moved on a replication-link cut (heartbeat has a second path)")
    cluster.net.set_link(a.taps["replication"], True)
    healed = time.monotonic()
    poll(lambda: ready(a, active=True) and ready(b, active=False), "DRBD reconnected and in sync after the cut",
         timeout=600, every=5)
    report["link_cut"].update(cut_s=round(healed - cut, 1), heal_s=round(time.monotonic() - healed, 1))
    if cluster.mail:
        expect_mail(cluster, f"recovered: DRBD {res} connected", mail_mark, healed, "link healed")
        exactly_once(cluster, [f"DRBD {res} disconnected", f"recovered: DRBD {res} connected"], mail_mark,
                     "replication-link cut")
        moved = mails_saying(cluster, "failover:", mail_mark) + mails_saying(cluster, "Takeover in progress", mail_mark)
        if moved:
            raise CheckFailed(f"replication-link cut: failover mails for no failover: {[m['subject'] for m in moved]}")
        clock = mails_saying(cluster, "clock not synchronised")
        if cluster.site.plan.serves_time and clock:
            raise CheckFailed(f"a node mailed that its clock is not synchronised while the site served time: "
                              f"{[m['subject'] for m in clock]}")


def more_rows(inserter: clients.Inserter) -> Callable[[], bool]:
    """True once the inserter has more acknowledged rows than now."""
    now = len(inserter.acked)
    return lambda: len(inserter.acked) > now
