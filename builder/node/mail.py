"""Alert mail through msmtp, with the build side's config (paths.msmtprc).

The config holds the relay password: it is only ever handed to msmtp with -C,
never read here, and msmtp's own output is scrubbed before it is shown.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from builder.node import health
from builder.node.config import Cluster
from builder.node.context import Ctx
from builder.node.errors import ConfigError, NodeError
from builder.node.runner import Result

MSMTPRC = "/etc/msmtprc"
ALIASES = "/etc/cluster/aliases"
TIMEOUT_S = 30


@dataclass(frozen=True)
class Alerts:
    recipients: tuple[str, ...]
    sender: str
    reminder_s: int
    msmtprc: str
    aliases: str


@dataclass(frozen=True)
class Sent:
    ok: bool
    cause: str = ""
    hint: str = ""
    detail: str = ""  # msmtp's output, scrubbed


def alerts(cluster: Cluster) -> Alerts | None:
    """cluster.json `alerts` (null: no mail) with the paths msmtp needs."""
    raw: Any = cluster.raw.get("alerts")
    if not raw:
        return None
    paths = cluster.raw.get("paths") or {}
    recipients = raw.get("recipients") if isinstance(raw, dict) else None
    sender = raw.get("sender") if isinstance(raw, dict) else None
    if not recipients or not all(isinstance(r, str) for r in recipients) or not isinstance(sender, str):
        raise ConfigError("cluster.json: alerts needs recipients (list of addresses) and sender")
    reminder = raw.get("reminder_s", 3600)
    return Alerts(tuple(recipients), sender, int(reminder if reminder is not None else 3600),
                  str(paths.get("msmtprc") or MSMTPRC), str(paths.get("aliases") or ALIASES))


def reminder_s(cluster: Cluster) -> int:
    a = alerts(cluster)
    return a.reminder_s if a else 3600


def compose(a: Alerts, subject: str, body: str) -> str:
    msg = EmailMessage()
    msg["From"] = a.sender
    msg["To"] = ", ".join(a.recipients)
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=True)
    msg["Message-ID"] = email.utils.make_msgid("clusterctl")
    msg.set_content(body)
    return msg.as_string()


def scrub(text: str) -> str:
    """Drop any line that mentions a password, whatever msmtp decided to print."""
    return "\n".join(line for line in text.splitlines() if "password" not in line.lower()).strip()


def send(ctx: Ctx, a: Alerts, subject: str, body: str) -> Sent:
    argv = ["msmtp", "-C", str(ctx.path(a.msmtprc)), f"--aliases={ctx.path(a.aliases)}",
            f"--timeout={TIMEOUT_S}", "-f", a.sender, "--", *a.recipients]
    r = ctx.run(argv, check=False, input=compose(a, subject, body), timeout=TIMEOUT_S * 2)
    if r.ok:
        return Sent(True)
    cause, hint = explain(r, a)
    return Sent(False, cause, hint, scrub(r.output))


# sysexits.h codes msmtp uses, checked after the more precise stderr texts.
_BY_CODE = {
    68: ("DNS: cannot resolve the SMTP host", "check alerts.smtp.host and this node's DNS servers"),
    69: ("the SMTP service is unavailable", "check alerts.smtp.host/port and the relay"),
    74: ("I/O error (config file or network)", "see msmtp's message below"),
    75: ("temporary failure connecting to the relay", "check alerts.smtp.host/port and the network"),
    76: ("the relay rejected the message", "check that the relay accepts alerts.sender and the recipients"),
    77: ("authentication failed", "check alerts.smtp.user and the SMTP password in the secrets, then rebuild"),
    78: ("msmtp configuration error", "see msmtp's message below; the config is rendered by builder"),
    124: ("msmtp timed out", "check the route and firewall to the relay"),
    127: ("msmtp is not installed", "install msmtp (msmtp-mta)"),
}


def explain(r: Result, a: Alerts) -> tuple[str, str]:
    """msmtp's exit code and stderr -> (one-line cause, hint)."""
    text = r.output.lower()
    if "authentication failed" in text:
        return _BY_CODE[77]
    if "cannot locate host" in text:
        return _BY_CODE[68]
    if "tls" in text:
        line = next((x for x in scrub(r.output).splitlines() if "tls" in x.lower()), "TLS failed")
        return (f"TLS: {line.removeprefix('msmtp: ').strip()}",
                "check alerts.smtp.tls_trust_file and that the relay's certificate names alerts.smtp.host")
    if "connection refused" in text:
        return ("connection refused by the SMTP host", "check alerts.smtp.host/port: nothing listens there")
    if "timed out" in text or "timeout" in text:
        return _BY_CODE[124]
    if "unreachable" in text or "no route to host" in text:
        return ("network unreachable", "check this node's route to the relay")
    if a.msmtprc in r.output or "no such file" in text:
        return (f"cannot read the msmtp config {a.msmtprc}",
                "is the profile's alerts section built into the image? (paths.msmtprc)")
    return _BY_CODE.get(r.returncode, (f"msmtp failed (exit {r.returncode})", "see msmtp's message below"))


def test(ctx: Ctx, cluster: Cluster) -> int:
    """`clusterctl alerts test`: one mail; on failure the cause, a hint and msmtp's words."""
    a = alerts(cluster)
    if a is None:
        print("alerts: null in cluster.json: this cluster sends no mail (add alerts to the profile)")
        return 1
    node = _node(ctx, cluster)
    sent = send(ctx, a, f"[{cluster.name}] {node}: test mail from clusterctl",
                f"This is a test of the alert mail of cluster {cluster.name}, sent by {node}.\n"
                "If you read this, alerts from this node reach you.\n")
    if sent.ok:
        print(f"sent a test mail to {', '.join(a.recipients)} (config {a.msmtprc})")
        return 0
    print(f"could not send the test mail: {sent.cause}\nhint: {sent.hint}")
    if sent.detail:
        print("msmtp said:\n" + "\n".join(f"  {line}" for line in sent.detail.splitlines()))
    return 1


def _node(ctx: Ctx, cluster: Cluster) -> str:
    try:
        return health.node_name(ctx, cluster)
    except NodeError:
        return ctx.path("/proc/sys/kernel/hostname").read_text().strip() or "unknown node"
