"""Benchmark: build_packages (deb, deb+rpm) of pbx-ha against a bare dpkg-deb of the same tree.

    .venv/bin/python scripts/bench-packaging.py [--runs 5] [--out FILE]

Prints one line of figures (median of --runs each); --out appends it to FILE too.
docs/benchmarks.md (Packaging) keeps the runs worth comparing against.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from builder.packaging import build_packages
from builder.profile.load import load_profile
from builder.profile.secrets import Secrets
from builder.render import render

# Obviously fake: a benchmark never needs a real cluster's secrets.
FAKE_SECRETS = Secrets(
    heartbeat_key="FAKE0heartbeat0key0for0bench0only0000000000000000000000000000000",
    drbd_secret="FAKE-drbd-secret-for-bench-only",
    smtp_password="FAKE-smtp-password-for-bench",
    db_password="FAKE-db-password-for-bench",
)
BARE_CONTROL = "Package: bare\nVersion: 1\nArchitecture: all\nMaintainer: x <x@x.invalid>\nDescription: x\n"


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(runs: int, work: Path) -> str:
    profile = load_profile("pbx-ha")
    tree = render(profile, FAKE_SECRETS)
    root = work / "root"
    tree.write(root)
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text(BARE_CONTROL)
    bare_argv = ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(work / "bare.deb")]
    bare = median_time(lambda: subprocess.run(bare_argv, check=True, capture_output=True), runs)
    deb = median_time(lambda: build_packages(profile, tree, ["deb"], work / "d", "1"), runs)
    both = median_time(lambda: build_packages(profile, tree, ["deb", "rpm"], work / "a", "1"), runs)
    return (f"bare dpkg-deb {bare * 1000:.0f} ms; build_packages deb {deb * 1000:.0f} ms "
            f"({deb / bare:.1f}x); deb+rpm {both * 1000:.0f} ms ({both / bare:.1f}x); median of {runs}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="runs of each build (the median is reported)")
    ap.add_argument("--out", type=Path, help="append the figures to this file as well")
    args = ap.parse_args()
    os.environ.setdefault("SOURCE_DATE_EPOCH", "1735689600")  # as the packaging tests build
    with tempfile.TemporaryDirectory(prefix="builder-bench-") as tmp:
        line = bench(args.runs, Path(tmp))
    print(line)
    if args.out:
        with args.out.open("a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
