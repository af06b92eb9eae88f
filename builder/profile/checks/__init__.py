"""Every check that relates more than one field, in one place per concern.

Each returns Problems naming the field path, the bad value and the fix. Single
values (types, bounds, patterns) are validated by the model itself. network.py:
nodes, addresses, links, timings, ports; storage.py: the DRBD disk, the mount
point, services and their state, alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from builder.profile.model import Profile
from builder.profile.problems import Problem

Check = Callable[[Profile], Iterator[Problem]]
CHECKS: list[Check] = []


def register(fn: Check) -> Check:
    CHECKS.append(fn)
    return fn


def check(profile: Profile) -> list[Problem]:
    from builder.profile.checks import network, storage  # noqa: F401  (they register their checks)

    return [problem for c in CHECKS for problem in c(profile)]
