"""`builder lab bench`: the hard failover twice in one run, with the profile's
heartbeat timings and with the seed tutorial's, and the ratios between them.

The tutorial variant is the same profile with only the heartbeat timings
changed, built into its own image (a profile-only rebuild reuses the cached
base), so the two runs differ in nothing else.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from builder.lab import lab, scenario
from builder.lab.cluster import Cluster
from builder.outdir import write_file
from builder.pipeline import node_image
from builder.profile.model import Profile

# ha.cf of the seed tutorial: keepalive 2, deadtime 30, warntime 10, initdead 120 (seconds).
TUTORIAL_MS = {"keepalive": 2_000, "deadtime": 30_000, "warntime": 10_000, "initdead": 120_000}


def tutorial_profile(profile: Profile) -> Profile:
    return profile.model_copy(update={"heartbeat": profile.heartbeat.model_copy(update=TUTORIAL_MS)})


def image_dir(profile: Profile) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "builder" / "lab-bench" / profile.cluster.name


def timings(profile: Profile) -> dict[str, float]:
    hb = profile.heartbeat
    return {"keepalive_s": hb.keepalive / 1000, "warntime_s": hb.warntime / 1000,
            "deadtime_s": hb.deadtime / 1000, "initdead_s": hb.initdead / 1000}


def failover_once(cluster: Cluster) -> dict[str, Any]:
    """Boot, wait until ready, pull the preferred node's plug, measure; always torn down."""
    result: dict[str, Any] = {"timings": timings(cluster.profile)}
    try:
        lab.down(cluster)
        scenario.come_up(cluster, result)
        result["failover"], _ = scenario.hard_failover(cluster)
    finally:
        lab.keep_consoles(cluster, prefix=f"bench-{cluster.profile.heartbeat.deadtime}ms-")
        lab.down(cluster)
    return result


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return round(ours / theirs, 3) if ours is not None and theirs else None


def run(cluster: Cluster, report_file: Path | None) -> dict[str, Any]:
    profile, secrets = cluster.profile, cluster.secrets
    report: dict[str, Any] = {"cluster": profile.cluster.name, "started": time.time(), "accel": cluster.accel}
    try:
        report["profile"] = failover_once(cluster)
        tutorial = tutorial_profile(profile)
        out = image_dir(profile)
        image = next(p for p in node_image(tutorial, secrets, out, "qcow2") if p.suffix == ".qcow2")
        report["tutorial"] = failover_once(lab.cluster_for(tutorial, secrets, image, cluster.accel))
        ours, theirs = report["profile"]["failover"], report["tutorial"]["failover"]
        report["ratios"] = {key: ratio(ours.get(key), theirs.get(key))
                            for key in ("detection_s", "takeover_s", "failover_s", "vip_s")}
    finally:  # a failed second half keeps the first half's figures
        if report_file:
            write_file(report_file, (json.dumps(report, indent=2) + "\n").encode(), command="lab bench",
                       profile_name=profile.cluster.name)
    return report


def summary(report: dict[str, Any]) -> str:
    lines = [f"lab bench {report['cluster']}: hard failover, profile timings vs the tutorial's"]
    for name in ("profile", "tutorial"):
        f, t = report[name]["failover"], report[name]["timings"]
        lines.append(f"  {name:8} (keepalive {t['keepalive_s']} s, deadtime {t['deadtime_s']} s): "
                     f"detection {f['detection_s']} s + takeover {f['takeover_s']} s = {f['failover_s']} s; "
                     f"VIP after {f['vip_s']} s")
        if f.get("takeover_by_resource_s"):
            lines.append(f"           takeover by resource: {f['takeover_by_resource_s']}")
    r = report["ratios"]
    lines.append(f"  ratios profile / tutorial: detection {r['detection_s']}, takeover {r['takeover_s']}, "
                 f"failover {r['failover_s']}")
    return "\n".join(lines)
