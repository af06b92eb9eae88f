"""The agent reads what the build side writes: every built-in profile's
cluster.json (builder.render.cluster_json) parses with the agent's parser.
(Tests may import the build side; the agent itself never does.)"""

from __future__ import annotations

import json

import pytest

from builder import render
from builder.node import config
from builder.profile import load


@pytest.mark.parametrize("name", load.builtin_names())
def test_builtin_profiles_cluster_json_parses(name: str) -> None:
    doc = json.loads(json.dumps(render.cluster_json(load.load_profile(name))))
    c = config.parse(doc)
    assert sum(n.preferred for n in c.nodes) == 1
    assert c.drbd.backing.kind in ("partition", "disk")
    for svc in c.services:
        assert all(p.startswith("/") for p in svc.state)
