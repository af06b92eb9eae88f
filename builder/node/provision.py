"""First-boot provisioning: the steps in order, each recorded when finished.

identity -> host -> disk -> drbd -> services, then start drbd and heartbeat.
Every step is idempotent and checks the real state before any destructive
action, so a rerun (after a reboot or power loss at any point) converges.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Callable

from builder.node import disk, host, identity, services
from builder.node.config import Cluster, Node
from builder.node.context import Ctx
from builder.node.drbd import NO_MD, UNCLEAN, Drbdadm
from builder.node.errors import EXIT_UNSAFE, IdentityError, NodeError, UnsafeError
from builder.node.state import STEPS, State

log = logging.getLogger("clusterctl")

UPTODATE = "UpToDate"
CONSISTENT = "Consistent"
INCONSISTENT = "Inconsistent"
SETTLE_S = 30.0  # for state changes that DRBD makes at once (new-current-uuid, primary)


def fix_for(step: str, error: NodeError) -> str:
    """The fix: the error's own hint lines, then how to resume."""
    hints = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
    first = "Nothing destructive was done. " if error.exit_code == EXIT_UNSAFE else ""
    resume = (f"{first}Fix the cause, then run `clusterctl provision` on this node (or reboot): "
              f"it resumes at step {step}.")
    return " ".join([*hints[-3:], resume])


def load_state(ctx: Ctx, cluster: Cluster) -> State:
    return State.load(ctx.path(f"{cluster.state_dir}/state.json"))


class Provisioner:
    def __init__(self, ctx: Ctx, cluster: Cluster) -> None:
        self.ctx = ctx
        self.cluster = cluster
        self.state = load_state(ctx, cluster)
        self.node: Node | None = None
        self.identity_source = ""

    # -- steps ---------------------------------------------------------------

    def step_identity(self) -> None:
        """Resolve and check only; recorded once the lock is held."""
        ident = identity.resolve(self.ctx, self.cluster)
        recorded = self.state.node
        if recorded and recorded != ident.name:
            raise IdentityError(
                f"this machine now resolves to {ident.name!r} ({ident.source}) but was "
                f"provisioned as {recorded!r} (state file {self.state.path}): refusing to go on"
            )
        log.info("this node is %s (from %s)", ident.name, ident.source)
        self.node = self.cluster.node(ident.name)
        self.identity_source = ident.source

    def step_host(self) -> None:
        host.apply(self.ctx, self.cluster, self._node)

    def step_disk(self) -> None:
        device = disk.find(self.ctx, self.cluster, self._node)
        self.state.set("backing", device)

    def step_drbd(self) -> None:
        node = self._node  # first: nothing happens without an identity
        drbd = self.cluster.drbd
        adm = Drbdadm(self.ctx, drbd.resource, drbd.minor)
        found = adm.metadata()
        if found == UNCLEAN:
            adm.apply_al()  # metadata that exists: never create-md over it
        elif found == NO_MD:
            backing = self.state.data.get("backing") or disk.backing_path(self.cluster, node)
            if disk.probe(self.ctx, backing).kind != disk.EMPTY:
                raise UnsafeError(f"{backing} is not empty and has no DRBD metadata: no create-md")
            # Recorded before create-md: "fresh" means our metadata, made by us.
            self.state.set("md_created", True)
            adm.run("create-md")
        host.wait_replication_address(self.ctx, node)
        adm.up()
        connected = self.ctx.wait_until(
            f"the peer to connect on {drbd.resource}",
            lambda: adm.status().connected,
            drbd.peer_timeout_s,
        )
        if node.preferred:
            mounted = self._initialize(adm, connected)
            if mounted:
                for svc in self.cluster.services:
                    services.stop(self.ctx, svc)
                    for path in svc.state:
                        services.move(self.ctx, path, drbd.mount, self._backup_dir)
            self._hand_over(adm, mounted)
        else:
            if connected:
                self._settle_secondary(adm)
            self._hand_over(adm, False)

    def step_services(self) -> None:
        _ = self._node
        for svc in self.cluster.services:
            services.stop(self.ctx, svc)
            services.disable(self.ctx, svc)
            for path in svc.state:
                services.link(self.ctx, path, self.cluster.drbd.mount, self._backup_dir)

    # -- DRBD details --------------------------------------------------------

    def _fresh(self, device: str) -> bool:
        """Our own metadata, made by this provisioning, over an otherwise empty
        device: the only case in which data may be declared good or forced."""
        if not self.state.data.get("md_created"):
            return False
        r = self.ctx.run(
            ["wipefs", "--no-act", "--noheadings", "--output", "TYPE", self.ctx.path(device)],
            check=False,
        )
        return r.ok and all(t.strip() in ("", "drbd") for t in r.stdout.splitlines())

    def _initialize(self, adm: Drbdadm, connected: bool) -> bool:
        """Preferred node: become primary once, make the filesystem if none,
        mount it. Returns False when this node must not touch the data."""
        drbd = self.cluster.drbd
        st = adm.status()
        if st.peer_role == "Primary":
            log.warning("peer is already primary on %s: this node only links", drbd.resource)
            return False
        if st.role != "Primary":
            if not self._promote(adm, connected):
                return False
            self.ctx.wait_until("primary", lambda: adm.status().role == "Primary", SETTLE_S, 0.5)
        found = disk.probe(self.ctx, drbd.device)
        if found.kind == disk.EMPTY:
            self.ctx.run([f"mkfs.{drbd.filesystem}", "-q", self.ctx.path(drbd.device)])
        elif found.detail.get("TYPE") != drbd.filesystem:
            raise UnsafeError(
                f"{drbd.device} holds {found.detail} instead of {drbd.filesystem}: not touching it"
            )
        mnt = self.ctx.path(drbd.mount)
        mnt.mkdir(parents=True, exist_ok=True)
        if not self.ctx.run(["mountpoint", "-q", mnt], check=False).ok:
            self.ctx.run(["mount", "-t", drbd.filesystem, self.ctx.path(drbd.device), mnt])
        return True

    def _promote(self, adm: Drbdadm, connected: bool) -> bool:
        """Become primary, forcing only over fresh data of our own. False: the peer holds the data."""
        drbd = self.cluster.drbd
        backing = str(self.state.data.get("backing"))
        st = adm.status()
        if connected:
            self.state.data.pop("forced_alone", None)  # a peer has seen our data now
            if st.disks == f"{INCONSISTENT}/{INCONSISTENT}":
                if not self._fresh(backing):
                    raise UnsafeError(
                        f"{drbd.resource}: both sides Inconsistent but this node's metadata "
                        "was not made by this provisioning: no --clear-bitmap; decide by hand"
                    )
                # Both devices fresh and empty: skip the initial full sync.
                adm.run("new-current-uuid", "--clear-bitmap")
                self.ctx.wait_until("UpToDate after new-current-uuid", lambda: adm.status().disk == UPTODATE,
                                    SETTLE_S, 0.5)
                st = adm.status()
            if st.disk != UPTODATE:
                log.info("peer holds the data (%s): this node syncs and only links", st.disks)
                return False
            adm.run("primary")
        elif st.disk == INCONSISTENT and self._fresh(backing):
            log.warning("peer absent after %d s: proceeding alone", drbd.peer_timeout_s)
            self.state.set("forced_alone", True)  # recorded first: the force may be cut short
            adm.run("primary", "--force")
        elif st.disk == UPTODATE:
            adm.run("primary")
        elif st.disk == CONSISTENT and self.state.data.get("forced_alone"):
            # Power lost after we forced alone: 8.4 attaches our own data Consistent
            # (fencing: the absent peer is not known to be outdated). No peer has
            # connected since, so this data is still the only data there is.
            log.warning("%s: re-promoting the data this provisioning made alone", drbd.resource)
            adm.run("primary", "--force")
        else:
            raise NodeError(
                f"{drbd.resource}: peer absent and local disk is {st.disk}: not forcing "
                "primary; start the peer and rerun (clusterctl provision)"
            )
        return True

    def _settle_secondary(self, adm: Drbdadm) -> None:
        """Non-preferred node: wait (bounded) until the preferred node has done its
        work and gone down, or a sync from a running peer has finished."""

        def settled() -> bool:
            st = adm.status()
            return not st.connected or (
                st.disks == f"{UPTODATE}/{UPTODATE}" and st.peer_role == "Primary"
            )

        self.ctx.wait_until("the peer to finish", settled, self.cluster.drbd.peer_timeout_s)

    def _hand_over(self, adm: Drbdadm, mounted: bool) -> None:
        """Leave DRBD down with a clean bitmap for drbd.service and heartbeat."""
        mnt = self.ctx.path(self.cluster.drbd.mount)
        if mounted or self.ctx.run(["mountpoint", "-q", mnt], check=False).ok:
            self.ctx.run(["umount", mnt])
        st = adm.status()
        if st.role == "Primary":
            adm.run("secondary")
        if st.configured:
            adm.run("down")

    # -- driver --------------------------------------------------------------

    @property
    def _node(self) -> Node:
        if self.node is None:
            raise IdentityError("identity unknown: refusing to touch anything")
        return self.node

    @property
    def _backup_dir(self) -> str:
        return f"{self.cluster.state_dir}/backup"

    def run(self) -> bool:
        """Run what is not done yet. Returns True when something was done."""
        if self.state.complete:
            log.info("provisioning already complete (%s)", self.state.path)
            return False
        steps: dict[str, Callable[[], None]] = {
            "identity": self.step_identity,
            "host": self.step_host,
            "disk": self.step_disk,
            "drbd": self.step_drbd,
            "services": self.step_services,
        }
        assert tuple(steps) == STEPS
        # Identity is resolved on every run: later steps must know who we are.
        # Nothing is written before it is known (not even the lock file).
        self.step_identity()
        lock_path = self.state.path.with_name("provision.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise NodeError("another clusterctl provision/boot is running") from None
            self.state = State.load(self.state.path)  # as the previous holder left it
            self._run_steps(steps)
        return True

    def _run_steps(self, steps: dict[str, Callable[[], None]]) -> None:
        if self.state.node is None:
            self.state.data["node"] = self._node.name
            self.state.data["identity_source"] = self.identity_source
        elif self.state.node != self._node.name:  # changed while we waited for the lock
            raise IdentityError(f"state file now names {self.state.node}, not {self._node.name}")
        self.state.finish("identity")
        for name in STEPS[1:]:
            if self.state.is_done(name):
                continue
            log.info("step %s", name)
            try:
                steps[name]()
            except NodeError as e:
                self.state.fail(name, str(e).splitlines()[0], fix_for(name, e))
                raise
            self.state.finish(name)
            log.info("step %s done", name)


def start(ctx: Ctx, cluster: Cluster | None = None, node: Node | None = None, first_boot: bool = False) -> None:
    """What happens at every boot once provisioned: heartbeat drives DRBD from here.

    On first boot the other node finishes early and would, after initdead,
    take resources the preferred node is still preparing: so it waits (bounded)
    until the preferred node's DRBD is back, i.e. its provisioning is done.
    A preferred node that never comes back is recorded (state "partner") for the
    health check to alert on; heartbeat starts all the same, so the cluster
    forms as soon as the partner is fixed, and this node takes the resources
    only if DRBD lets it (UpToDate data), never by force.
    """
    ctx.run(["systemctl", "start", "drbd.service"])
    if cluster is not None and node is None and (name := load_state(ctx, cluster).node):
        node = cluster.node(name)  # already provisioned: identity was not resolved this time
    if cluster is not None and node is not None and not node.preferred and (
        first_boot or "partner" not in load_state(ctx, cluster).data  # power lost before the wait ended
    ):
        adm = Drbdadm(ctx, cluster.drbd.resource, cluster.drbd.minor)
        timeout = cluster.drbd.peer_timeout_s
        done = ctx.wait_until("the preferred node to finish provisioning", lambda: adm.status().connected, timeout)
        peer = cluster.peer(node.name).name
        load_state(ctx, cluster).set("partner", {"name": peer, "finished": done, "waited_s": timeout})
        if not done:
            log.warning("%s did not finish its first boot within %d s: starting heartbeat anyway; this node "
                        "takes over only with UpToDate data (its DRBD disk: %s), and alerts",
                        peer, timeout, adm.status().disk)
    ctx.run(["systemctl", "start", "heartbeat.service"])
