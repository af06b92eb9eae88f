"""clusterctl: provision | boot | status [--json] | health [--quiet] | alerts test."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from builder.node import config, events, health, mail, provision, status, statusport
from builder.node.context import Ctx
from builder.node.errors import NodeError
from builder.node.runner import SubprocessRunner

log = logging.getLogger("clusterctl")
status.register("time", lambda ctx, cluster: health.clock(ctx))
status.register("health", events.status_section)

EPILOG = """exit status: 0 ok, 1 a step failed (rerun resumes), 2 bad cluster.json,
3 this machine is not a node of cluster.json (nothing touched),
4 refused because it could destroy data (nothing destroyed)"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clusterctl",
        description="Cluster node agent: first-boot provisioning and status.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--root", type=Path, default=Path("/"), help=argparse.SUPPRESS)
    p.add_argument(
        "--config", default=config.CLUSTER_JSON, help="cluster description (default: %(default)s)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("provision", help="provision this node (resumes; no-op when done)")
    sub.add_parser("boot", help="provision if needed, then start drbd and heartbeat")
    st = sub.add_parser("status", help="node, provisioning, DRBD, heartbeat, VIP, services")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("status-port", help="answer read-only status requests on the serial line named by "
                   "the cluster.status-port credential (for VMs and the lab)")
    he = sub.add_parser("health", help="check the cluster's signals; announce changes (cron, every minute)")
    he.add_argument("--quiet", action="store_true", help="print nothing unless the check itself fails")
    al = sub.add_parser("alerts", help="alert mail")
    al.add_argument("action", choices=["test"], help="test: send a test mail and explain any failure")
    return p


def _logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO)
    # Under systemd stderr goes to the journal, which adds its own timestamps.
    fmt = "%(levelname)s %(message)s" if os.environ.get("INVOCATION_ID") else (
        "%(asctime)s %(levelname)s %(message)s"
    )
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr, force=True)


def _unprovisioned_health(ctx: Ctx, cluster: config.Cluster, quiet: bool) -> int:
    """Before the first boot finished only its failure is worth a mail (retried here)."""
    state = provision.load_state(ctx, cluster)
    err = state.data.get("error")
    if not err:
        if not quiet:
            print("not provisioned yet: nothing checked")
        return 0
    mailed = events.mail_failure(ctx, cluster, state)
    if not quiet:
        print(f"first boot FAILED at step {err['step']}: {err['message']}\nmail: {'sent' if mailed else 'NOT sent'}")
    return 0


def main(argv: Sequence[str] | None = None, ctx: Ctx | None = None) -> int:
    """`ctx` is for tests (fake runner, temp root, fake clock)."""
    args = _parser().parse_args(argv)
    _logging(args.verbose, quiet=args.command in ("status", "health", "alerts"))
    if args.command == "health" and args.quiet and not args.verbose:
        logging.getLogger().setLevel(logging.ERROR)  # under cron any output becomes a mail
    if ctx is None:
        ctx = Ctx(runner=SubprocessRunner(), root=args.root)
    try:
        cluster = config.load(ctx.path(args.config))
        if args.command == "status":
            report = status.collect(ctx, cluster)
            print(status.to_json(report) if args.json else status.render(report))
            return 0
        if args.command == "health":
            if not health.provisioned(ctx, cluster):
                return _unprovisioned_health(ctx, cluster, args.quiet)
            outcome = events.run(ctx, cluster)
            if not args.quiet:
                print(events.summary(outcome))
            return 0
        if args.command == "alerts":
            return mail.test(ctx, cluster)
        if args.command == "status-port":
            return statusport.serve(ctx, cluster)
        # provision and boot differ only in intent: both converge, then start.
        provisioner = provision.Provisioner(ctx, cluster)
        try:
            did_work = provisioner.run()
        except NodeError as e:
            if provisioner.state.failed_now:  # a step failed in this run, recorded
                events.announce_failure(ctx, cluster, provisioner.state)
            else:  # no identity, the lock held, a state file we must not touch: nothing recorded
                events.say(ctx, f"\n*** clusterctl: provisioning stopped: {str(e).splitlines()[0]}\n")
            raise
        provision.start(ctx, cluster, provisioner.node, first_boot=did_work)
        return 0
    except NodeError as e:
        log.error("%s", e)
        return e.exit_code
