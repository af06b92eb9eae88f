"""The `builder lab` verbs over one Cluster: up, status, test, down, run."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from builder.errors import BuilderError, InputError
from builder.lab import scenario
from builder.lab.cluster import Cluster, Node
from builder.lab.install import install_from_iso
from builder.lab.poll import CheckFailed
from builder.outdir import ISO9660, QCOW2, check_in, check_out, ensure_out_dir, is_builders, write_file
from builder.profile.load import Source
from builder.profile.model import Profile
from builder.profile.secrets import Secrets
from builder.run import run as run_cmd

INSTALL_TIMEOUT = 1800  # writing the 2.6 GB image under TCG takes minutes
CONSOLES = Path("out") / "lab-consoles"  # kept after `down` (CI keeps out/)


def workdir(profile: Profile) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "builder" / "lab" / profile.cluster.name


def workdir_entries(profile: Profile) -> frozenset[str]:
    """What a work folder holds (one folder per node, the site's, the mail sink's file):
    one holding only these is the lab's, and `down` may remove it."""
    return frozenset({*(n.name for n in profile.nodes), "site", "mail.jsonl"})


def check_inputs(profile: Profile, verb: str, image: str | None, iso: str | None) -> tuple[Path | None, Path]:
    """(installer ISO or None, what the nodes boot), checked: --install-from-iso (its default
    when given without a value) else --image (default out/<cluster>.qcow2). Installed from the
    ISO, the nodes' disks are written by the installer: no image overlay."""
    name = profile.cluster.name
    if iso is not None:
        if verb != "run":
            raise InputError("--install-from-iso works with `builder lab run` only",
                             hint=f"builder lab run --profile {name} --install-from-iso")
        path = check_in(iso or f"out/{name}-installer.iso", option="--install-from-iso", magic=ISO9660,
                        what="installer ISO", fix=f"build it: builder image --profile {name} --format iso")
        return path, path
    return None, check_in(image if image is not None else f"out/{name}.qcow2", option="--image", magic=QCOW2,
                          what="qcow2 image", fix=f"build it: builder image --profile {name}")


def check_folders(profile: Profile, verb: str, source: Source) -> None:
    """The folders the lab writes and removes, before anything is written: its work folder
    (removed by `down`), and out/lab-consoles (kept by run and bench)."""
    work = check_out(str(workdir(profile)), option="the lab's work folder (under XDG_CACHE_HOME)", kind="into",
                     command="lab", source=source, allow=workdir_entries(profile))
    if "," in str(work):
        raise InputError(f"the lab's work folder {str(work)!r}: QEMU cannot take a comma in a file name",
                         hint="set XDG_CACHE_HOME to a path without commas")
    if verb in ("run", "bench"):
        for folder in (CONSOLES.parent, CONSOLES):
            check_out(str(folder), option="the lab's console folder", kind="into", command="lab", source=source)


def is_report(data: bytes) -> bool:
    """A report this lab wrote (the only file --report overwrites)."""
    try:
        report = json.loads(data)
    except ValueError:
        return False
    return isinstance(report, dict) and {"cluster", "started"} <= report.keys()


def cluster_for(profile: Profile, secrets: Secrets, image: Path | None, accel: str = "tcg") -> Cluster:
    image = image or Path("out") / f"{profile.cluster.name}.qcow2"
    if not image.is_file():
        raise InputError(f"no image at {image}", hint=f"build it: builder image --profile {profile.cluster.name}")
    return Cluster(profile, secrets, image.absolute(), workdir(profile), accel)


def down(cluster: Cluster) -> None:
    cluster.down()
    work = workdir(cluster.profile)
    if is_builders(work, workdir_entries(cluster.profile)):  # never a folder the lab did not make
        shutil.rmtree(work, ignore_errors=True)
    for conf in Path(tempfile.gettempdir()).glob(f"builder-lab-{os.getuid()}-*.cnf"):
        conf.unlink(missing_ok=True)  # the SQL client's option files (passwords)


def keep_consoles(cluster: Cluster, prefix: str = "") -> None:
    """Copy every console log to out/lab-consoles before `down` removes the workdir."""
    name = cluster.profile.cluster.name
    keep = ensure_out_dir(ensure_out_dir(CONSOLES.parent, command="lab", profile_name=name) / CONSOLES.name,
                          command="lab", profile_name=name)
    for node in cluster.nodes:
        for p in sorted(node.vm.spec.workdir.glob("console-*.log")):
            shutil.copy(p, keep / f"{prefix}{node.name}-{p.name}")


def status(cluster: Cluster) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for node in cluster.nodes:
        try:
            out[node.name] = node.status()
        except (OSError, BuilderError) as e:
            out[node.name] = {"error": str(e)}
    return out


def install_nodes(cluster: Cluster, iso: Path) -> dict[str, Any]:
    """Each node's disk written by the installer ISO, as on bare metal (both at once)."""
    if not iso.is_file():
        raise InputError(f"no installer ISO at {iso}",
                         hint=f"build it: builder image --profile {cluster.profile.cluster.name} --format iso")
    t0 = time.monotonic()

    def install(node: Node) -> None:
        node.vm.spec.workdir.mkdir(parents=True, exist_ok=True)
        run_cmd(["qemu-img", "create", "-q", "-f", "qcow2", node.vm.disk, node.vm.spec.disk_size])
        install_from_iso(iso.absolute(), node.vm.disk, node.name, node.vm.spec.workdir / "install", INSTALL_TIMEOUT)

    with ThreadPoolExecutor(max_workers=len(cluster.nodes)) as pool:
        list(pool.map(install, cluster.nodes))
    return {"iso": str(iso), "install_s": round(time.monotonic() - t0, 1)}


def run(cluster: Cluster, report_file: Path | None, *, boot: bool = True,
        install_from: Path | None = None, power_cuts: bool = True) -> dict[str, Any]:
    """The scenario with the report; the cluster is torn down afterwards when we booted it.
    install_from: write each node's disk with this installer ISO first (instead of
    copy-on-write overlays of the image)."""
    report: dict[str, Any] = {"cluster": cluster.profile.cluster.name, "started": time.time(),
                              "accel": cluster.accel}
    try:
        if boot:
            down(cluster)  # leftovers of a crashed run
        if install_from:
            report["install"] = install_nodes(cluster, install_from)
        scenario.run(cluster, report, boot=boot, power_cuts=power_cuts)
        report["result"] = "pass"
    except CheckFailed as e:
        report["result"] = "fail"
        report["failed_check"] = e.message
        report["status_at_failure"] = last_status(cluster)
        raise
    except BaseException as e:
        report["result"] = "error"
        report["error"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        if cluster.mail:
            report["mail"] = [m.get("subject") for m in cluster.mail.messages()]
        report["infra_retries"] = [h for n in cluster.nodes for h in n.vm.hiccups]
        report["consoles"] = [str(p) for n in cluster.nodes for p in sorted(n.vm.spec.workdir.glob("console-*.log"))]
        if report_file:
            write_file(report_file, (json.dumps(report, indent=2) + "\n").encode(), command="lab",
                       profile_name=cluster.profile.cluster.name)
        if boot:
            try:
                keep_consoles(cluster)
            finally:
                down(cluster)
    return report


def last_status(cluster: Cluster) -> dict[str, Any]:
    """Each node's own view (DRBD, VIP, health conditions) when a check failed, for the report."""
    out: dict[str, Any] = {}
    for node in cluster.nodes:
        try:
            out[node.name] = node.status()
        except Exception as e:  # diagnostics only: never hide the failed check
            out[node.name] = {"error": f"{type(e).__name__}: {e}"}
    return out


def summary(report: dict[str, Any]) -> str:
    f = report.get("failover", {})
    lines = [f"lab {report.get('cluster')}: {report.get('result')}"]
    for cut in report.get("power_cuts", []):
        lines.append(f"  power cut: {cut['node']} at {cut['cut_at_s']} s, {cut['where']}")
    if "ready_s" in report:
        cuts = " through every power cut" if report.get("power_cuts") else ""
        lines.append(f"  ready after {report['ready_s']} s{cuts} (both nodes provisioned, DRBD in sync; "
                     f"out of sync at ready: {report.get('out_of_sync_kib_at_ready')} KiB)")
    if "time_synchronised_s" in report:
        lines.append(f"  clocks synchronised to the site's time server after {report['time_synchronised_s']} s")
    if f:
        lines.append(f"  hard failover: {f.get('failover_s')} s = detection {f.get('detection_s')} s "
                     f"+ takeover {f.get('takeover_s')} s; VIP after {f.get('vip_s')} s; "
                     f"services back {f.get('services_back_s')}")
    for key in ("after_failover", "after_failback"):
        if key in report:
            r = report[key]
            lines.append(f"  {key}: {r['rows_present']}/{r['rows_acked']} acknowledged rows present")
    if "rejoin" in report:
        lines.append(f"  rejoin: failback {report['rejoin']['failback_s']} s, resync {report['rejoin']['resync_kb']} KiB")
    if "link_cut" in report:
        cut = report["link_cut"]
        lines.append(f"  replication link cut: no failover; operator mailed after {cut.get('mail_s')} s; "
                     f"healed in {cut.get('heal_s')} s")
    if f.get("mail_s") is not None:
        lines.append(f"  failover mail at the relay {f['mail_s']} s after the kill; one mail per event")
    for hiccup in report.get("infra_retries", []):
        lines.append(f"  infrastructure retry: {hiccup}")
    if "failed_check" in report:
        lines.append(f"  FAILED: {report['failed_check']}")
    return "\n".join(lines)
