"""The metadata and disk probes against the real drbdadm/drbdmeta, blkid and wipefs.

Needs root and a loop device; no DRBD kernel module is needed for these
(drbdadm uses its v9 parser then, hence the node-id lines below; the messages
come from the same drbdmeta).
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.node import disk
from builder.node.context import Ctx
from builder.node.drbd import Drbdadm
from builder.node.runner import SubprocessRunner

from . import tool_answers


@pytest.fixture
def loop() -> Iterator[tuple[str, Path]]:
    base = Path(tempfile.mkdtemp(prefix="clusterctl-drbd-", dir="/var/tmp"))
    img = base / "backing.img"
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    r = subprocess.run(["losetup", "--find", "--show", str(img)], capture_output=True, text=True)
    assert r.returncode == 0, f"no loop device: {r.stderr.strip()}"
    dev = r.stdout.strip()
    conf = base / "r0.res"
    conf.write_text(f"""resource r0 {{
  device /dev/drbd0;
  disk {dev};
  meta-disk internal;
  on {platform.node()} {{ address 10.1.1.1:7788; node-id 0; }}
  on clusterctl-peer {{ address 10.1.1.2:7788; node-id 1; }}
}}
""")
    try:
        yield dev, conf
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_metadata_and_disk_probes(loop: tuple[str, Path]) -> None:
    dev, conf = loop
    ctx = Ctx(runner=SubprocessRunner(), root=Path("/"))
    adm = Drbdadm(ctx, "r0", 0, prefix=("drbdadm", "-c", str(conf)))

    assert disk.probe(ctx, dev).kind == disk.EMPTY
    assert adm.has_metadata() is False  # "No valid meta data found"

    adm.run("create-md")
    assert adm.has_metadata() is True
    assert disk.probe(ctx, dev).kind == disk.DRBD

    # A filesystem inside DRBD (the data area, before the internal metadata at the
    # end) is still "ours": blkid -p reports drbd, wipefs lists both.
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "nodiscard", dev, "60M"], check=True,
                   capture_output=True)
    assert disk.probe(ctx, dev).kind == disk.DRBD
    types = ctx.run(["wipefs", "--no-act", "--noheadings", "--output", "TYPE", dev]).stdout.split()
    assert sorted(types) == ["drbd", "ext4"]


def test_foreign_content_is_refused_and_create_md_declines(loop: tuple[str, Path]) -> None:
    dev, conf = loop
    ctx = Ctx(runner=SubprocessRunner(), root=Path("/"))
    subprocess.run(["mkfs.ext4", "-q", "-F", dev], check=True, capture_output=True)
    found = disk.probe(ctx, dev)
    assert found.kind == "foreign" and found.detail["TYPE"] == "ext4"
    # Even if asked, drbdmeta refuses: the runner gives it an empty stdin (no "yes").
    adm = Drbdadm(ctx, "r0", 0, prefix=("drbdadm", "-c", str(conf)))
    r = adm.run("create-md", check=False)
    assert not r.ok and "Operation refused" in r.output
    assert adm.has_metadata() is False

    subprocess.run(["wipefs", "-a", dev], check=True, capture_output=True)
    subprocess.run(["sfdisk", "-q", dev], input="label: gpt\n", text=True, check=True,
                   capture_output=True)
    found = disk.probe(ctx, dev)
    assert found.kind == "foreign" and found.detail.get("PTTYPE") == "gpt"


def _loop(img: Path, size: int) -> str:
    with open(img, "wb") as f:
        f.truncate(size)
    r = subprocess.run(["losetup", "--find", "--show", str(img)], capture_output=True, text=True)
    assert r.returncode == 0, f"no loop device: {r.stderr.strip()}"
    return r.stdout.strip()


def test_the_fake_runners_answers_are_the_real_tools_answers() -> None:
    """fixtures/tool-answers.json, entry by entry, against drbdadm-84/drbdmeta (v08
    metadata, as on the nodes), blkid, wipefs and mount on loop devices; the
    kernel's part (unclean metadata after a crash) is made by tool_answers.make_unclean."""
    base = Path(tempfile.mkdtemp(prefix="clusterctl-answers-", dir="/var/tmp"))
    devs = [_loop(base / "backing.img", 64 << 20), _loop(base / "fs.img", 32 << 20)]
    conf = base / "r0.res"
    conf.write_text(f"resource r0 {{\n  device /dev/drbd0;\n  disk {devs[0]};\n  meta-disk internal;\n"
                    f"  on {platform.node()} {{ address 10.1.1.1:7788; }}\n"
                    "  on clusterctl-peer { address 10.1.1.2:7788; }\n}\n")
    (base / "mnt").mkdir()
    try:
        live = tool_answers.record_live(devs[0], conf, devs[1], base / "mnt")
        flags, magic = tool_answers.superblock(devs[0])
    finally:
        subprocess.run(["umount", str(base / "mnt")], capture_output=True)
        subprocess.run(["losetup", "-d", *devs], check=False)
        shutil.rmtree(base, ignore_errors=True)
    fixture = tool_answers.answers()
    assert sorted(live) == sorted(k for k, v in fixture.items() if v["live"])
    for key, got in live.items():
        want = {k: fixture[key][k] for k in ("rc", "stdout", "stderr")}
        assert got == want, f"{key}: the real tool now answers {got}"
    # apply-al left it as drbdmeta writes clean metadata: v08 magic, MDF_AL_CLEAN set
    assert magic == tool_answers.MD_MAGIC_08 and flags & tool_answers.MDF_AL_CLEAN
