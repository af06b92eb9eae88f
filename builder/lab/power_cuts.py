"""Power cuts during first boot: each node loses power at chosen points of its
provisioning, boots again, and the cluster must still come up with no manual step.

A cut point is a line the node's first boot prints on its console (the agent logs
every command it runs as `$ argv`, then `exit N`): the lab watches the console of
the current boot and pulls the plug (SIGKILL of QEMU) the moment it appears.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from builder.lab.cluster import Cluster, Node
from builder.lab.poll import CheckFailed, poll

CUT_WAIT = 1500  # from power-on to a cut point: a TCG boot, repart, the peer's wait
EVERY = 0.2  # console polls: a cut lands within a fraction of a second of its line


@dataclass(frozen=True)
class Cut:
    node: int  # index in the profile: 0 = the preferred node
    where: str  # what the report calls it
    pattern: str  # regex over this boot's console text (DOTALL)
    delay: float = 0.0  # seconds after the line appears: to land inside a running command


def cuts(resource: str, first_state: str | None) -> list[Cut]:
    """The cut points, in the order a first boot reaches them."""
    up = rf"\$ drbdadm up {re.escape(resource)}\s.*?exit 0"
    points = [Cut(1, "inside the DRBD step, right after up", up), Cut(0, "inside the DRBD step, right after up", up)]
    if first_state:
        points.append(Cut(0, f"while copying {first_state} onto the replicated disk",
                          rf"\$ cp -a \S+ --no-target-directory {re.escape(first_state)} ", delay=0.5))
    points.append(Cut(0, "in the services step (stop, disable, link)", r"step services\s"))
    return points


def seen(node: Node, pattern: str) -> bool:
    return re.search(pattern, node.vm.console_text(), re.DOTALL) is not None


def first_boot_power_cuts(cluster: Cluster) -> list[dict[str, object]]:
    """Cut each node's power at every point of cuts(), as each node reaches it (the
    nodes run at once: each one's next cut is watched on its current boot's console).
    Returns what was cut when."""
    state = next((path for svc in cluster.profile.services for path in svc.state), None)
    pending = {i: [c for c in cuts(cluster.profile.drbd.resource, state) if c.node == i]
               for i in range(len(cluster.nodes))}
    done: list[dict[str, object]] = []
    t0 = time.monotonic()

    def step() -> bool:
        for i, queue in pending.items():
            node = cluster.nodes[i]
            if queue and seen(node, queue[0].pattern):
                cut = queue.pop(0)
                time.sleep(cut.delay)
                killed = node.vm.kill()
                node.vm.start()
                done.append({"node": node.name, "where": cut.where, "cut_at_s": round(killed - t0, 1),
                             "boot": node.vm.boots})
        return not any(pending.values())

    def waiting() -> str:
        return "; ".join(f"{cluster.nodes[i].name}: {q[0].where}" for i, q in pending.items() if q)

    try:
        poll(step, f"every first-boot cut point reached ({waiting()})", timeout=CUT_WAIT, every=EVERY)
    except CheckFailed as e:
        raise CheckFailed(f"{e.message}; not reached: {waiting()}") from None
    return done
