"""The docs show what builder really writes: docs/cluster-json.md's example is pbx-ha's cluster.json."""

from __future__ import annotations

import json
import re

from tests.conftest import REPO


def test_cluster_json_example_is_the_rendered_one() -> None:
    doc = (REPO / "docs" / "cluster-json.md").read_text()
    example = re.search(r"```json\n(.*?)```", doc, re.S)
    assert example, "docs/cluster-json.md has no ```json example"
    golden = REPO / "tests" / "golden" / "render" / "pbx-ha" / "etc" / "cluster" / "cluster.json.golden"
    assert json.loads(example.group(1)) == json.loads(golden.read_text())
