"""Benchmark: build_packages (deb + rpm) against a bare dpkg-deb of the same tree.

Records the figures (no timing assertion): BUILDER_BENCH_OUT=<file> appends a line.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from builder.packaging import build_packages
from builder.profile.model import Profile
from builder.staging import Tree

RUNS = 5


def _best(fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


@pytest.mark.slow
def test_bench_build_packages(pbx: Profile, pbx_tree: Tree, tmp_path: Path) -> None:
    root = tmp_path / "root"
    pbx_tree.write(root)
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text(
        "Package: bare\nVersion: 1\nArchitecture: all\nMaintainer: x <x@x.invalid>\nDescription: x\n"
    )
    bare = _best(
        lambda: subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(tmp_path / "bare.deb")],
            check=True,
            capture_output=True,
        )
    )
    deb = _best(lambda: build_packages(pbx, pbx_tree, ["deb"], tmp_path / "d", "1"))
    both = _best(lambda: build_packages(pbx, pbx_tree, ["deb", "rpm"], tmp_path / "a", "1"))
    line = (
        f"bare dpkg-deb {bare * 1000:.0f} ms; build_packages deb {deb * 1000:.0f} ms "
        f"({deb / bare:.1f}x); deb+rpm {both * 1000:.0f} ms ({both / bare:.1f}x); median of {RUNS}"
    )
    print(line)
    if out := os.environ.get("BUILDER_BENCH_OUT"):
        with open(out, "a") as f:
            f.write(line + "\n")
