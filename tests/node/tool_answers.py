"""The real tools' answers, as the fake runner gives them (fixtures/tool-answers.json).

`answer(key, **names)` returns a Result from the fixture with its placeholders
({dev}, {res}, {minor}, {unit}, {mount}, {uuid}) filled in. `record_live()`
produces the same answers from the real drbd-utils/util-linux on a loop device,
for the integration test that keeps the fixture honest (and to refresh it).

What the 8.4 kernel does to the metadata and cannot be run here is done by hand
the same way: `make_unclean()` writes the superblock as drbd_md_write() leaves it
while attached (magic DRBD_MD_MAGIC_84_UNCLEAN, MDF_AL_CLEAN off) and as a crash
leaves it (MDF_PRIMARY_IND still on when it was primary).
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from builder.node.runner import Result

FIXTURE = Path(__file__).with_name("fixtures") / "tool-answers.json"
DRBDADM_84 = "/usr/lib/drbd/drbdadm-84"

# v08 superblock (drbd 8.4 struct meta_data_on_disk, big-endian), at md_offset
FLAGS_AT, MAGIC_AT = 56, 60
DRBD_MAGIC = 0x83740267
MD_MAGIC_08, MD_MAGIC_84_UNCLEAN = DRBD_MAGIC + 4, DRBD_MAGIC + 5
MDF_CONSISTENT, MDF_PRIMARY_IND, MDF_WAS_UP_TO_DATE, MDF_AL_CLEAN = 1 << 0, 1 << 1, 1 << 4, 1 << 7


@cache
def answers() -> dict[str, dict[str, Any]]:
    doc = json.loads(FIXTURE.read_text())
    return {k: v for k, v in doc["answers"].items()}


def answer(argv: tuple[str, ...], key: str, **names: str) -> Result:
    a = answers()[key]

    def fill(text: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: names.get(m.group(1), m.group(0)), text)

    return Result(argv, a["rc"], fill(a["stdout"]), fill(a["stderr"]))


# -- live recording (root, loop devices, drbd-utils; no kernel module) ----------

def md_offset(dev: str) -> int:
    size = int(subprocess.run(["blockdev", "--getsize64", dev], capture_output=True, text=True,
                              check=True).stdout)
    return size - 4096  # internal meta data: the superblock is the last 4 KiB


def make_unclean(dev: str, primary: bool = True) -> None:
    """The superblock as the 8.4 kernel leaves it after a crash while attached."""
    off = md_offset(dev)
    with open(dev, "r+b") as f:
        f.seek(off + FLAGS_AT)
        flags = struct.unpack(">I", f.read(4))[0]
        flags = (flags & ~MDF_AL_CLEAN) | MDF_CONSISTENT | MDF_WAS_UP_TO_DATE | (MDF_PRIMARY_IND if primary else 0)
        f.seek(off + FLAGS_AT)
        f.write(struct.pack(">II", flags, MD_MAGIC_84_UNCLEAN))


def superblock(dev: str) -> tuple[int, int]:
    with open(dev, "rb") as f:
        f.seek(md_offset(dev) + FLAGS_AT)
        flags, magic = struct.unpack(">II", f.read(8))
    return flags, magic


def run(argv: list[str], dev: str, **names: str) -> dict[str, Any]:
    """Run and normalise: device and uuids back into placeholders, dates dropped."""
    p = subprocess.run(argv, capture_output=True, text=True, input="", env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})

    def norm(text: str) -> str:
        text = text.replace(dev, "{dev}")
        for k, v in names.items():
            text = text.replace(v, "{" + k + "}")
        return re.sub(r"^UUID=\S+$", "UUID={uuid}", text, flags=re.MULTILINE)

    return {"rc": p.returncode, "stdout": norm(p.stdout), "stderr": norm(p.stderr)}


def head(rec: dict[str, Any]) -> dict[str, Any]:
    """dump-md prints the date and the uuids: only its first line is kept."""
    return {**rec, "stdout": rec["stdout"].splitlines(keepends=True)[0] if rec["stdout"] else ""}


def record_live(dev: str, conf: Path, fs_dev: str, mnt: Path) -> dict[str, dict[str, Any]]:
    """Every answer that can be produced here, keyed as in the fixture. `dev` is
    an empty 64 MiB loop device, `fs_dev` an empty loop device for mkfs/mount."""
    adm = [DRBDADM_84, "-c", str(conf)]
    out: dict[str, dict[str, Any]] = {}
    out["blkid/empty"] = run(["blkid", "-p", "-o", "export", dev], dev)
    out["wipefs/empty"] = run(["wipefs", "--no-act", "--noheadings", "--output", "TYPE", dev], dev)
    out["dump-md/none"] = run([*adm, "dump-md", "r0"], dev)
    out["apply-al/none"] = run([*adm, "apply-al", "r0"], dev)
    out["create-md/empty"] = run([*adm, "create-md", "r0"], dev)
    out["dump-md/clean"] = head(run([*adm, "dump-md", "r0"], dev))
    out["blkid/drbd"] = run(["blkid", "-p", "-o", "export", dev], dev)
    out["wipefs/drbd"] = run(["wipefs", "--no-act", "--noheadings", "--output", "TYPE", dev], dev)
    out["create-md/existing"] = run([*adm, "create-md", "r0"], dev)
    out["apply-al/clean"] = run([*adm, "apply-al", "r0"], dev)
    make_unclean(dev)
    out["dump-md/unclean"] = run([*adm, "dump-md", "r0"], dev)
    out["blkid/drbd-unclean"] = run(["blkid", "-p", "-o", "export", dev], dev)
    out["create-md/unclean"] = run([*adm, "create-md", "r0"], dev)
    out["apply-al/unclean"] = run([*adm, "apply-al", "r0"], dev)
    out["dump-md/after-apply-al"] = head(run([*adm, "dump-md", "r0"], dev))
    # A filesystem in DRBD's data area (before the internal metadata) shows on the backing device.
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "nodiscard", dev, "60M"], check=True, capture_output=True)
    out["blkid/drbd-ext4"] = run(["blkid", "-p", "-o", "export", dev], dev)
    out["wipefs/drbd-ext4"] = run(["wipefs", "--no-act", "--noheadings", "--output", "TYPE", dev], dev)
    subprocess.run(["mkfs.ext4", "-q", "-F", fs_dev], check=True, capture_output=True)
    out["blkid/ext4"] = run(["blkid", "-p", "-o", "export", fs_dev], fs_dev)
    m = str(mnt)
    out["mountpoint/no"] = run(["mountpoint", "-q", m], fs_dev, mount=m)
    out["mount/ok"] = run(["mount", "-t", "ext4", fs_dev, m], fs_dev, mount=m)
    out["mountpoint/yes"] = run(["mountpoint", "-q", m], fs_dev, mount=m)
    out["mount/already"] = run(["mount", "-t", "ext4", fs_dev, m], fs_dev, mount=m)
    out["umount/ok"] = run(["umount", m], fs_dev, mount=m)
    out["umount/not-mounted"] = run(["umount", m], fs_dev, mount=m)
    subprocess.run(["wipefs", "-a", fs_dev], check=True, capture_output=True)
    out["mount/no-fs"] = run(["mount", "-t", "ext4", fs_dev, m], fs_dev, mount=m)
    return out
