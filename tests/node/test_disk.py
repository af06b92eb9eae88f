"""disk.probe on what blkid really printed for a fresh systemd-repart partition (lab, trixie)."""

from __future__ import annotations

from builder.node import disk
from builder.node.context import Ctx
from tests.node.fakes import FakeRunner

# Seen on the lab's first boot: blkid -p exits 0 on a new, empty GPT partition
# and prints only where the partition sits in its disk's table.
FRESH = """DEVNAME=/dev/disk/by-partlabel/drbd-r0
PART_ENTRY_SCHEME=gpt
PART_ENTRY_NAME=drbd-r0
PART_ENTRY_UUID=0cd596a7-89ba-4ba3-9e6e-d9bbc498026c
PART_ENTRY_TYPE=0fc63daf-8483-4772-8e79-3d69d8477de4
PART_ENTRY_NUMBER=3
PART_ENTRY_OFFSET=12582872
PART_ENTRY_SIZE=4194304
PART_ENTRY_DISK=253:0
"""


def test_a_fresh_partition_is_empty(ctx: Ctx, runner: FakeRunner) -> None:
    runner.script("blkid", out=FRESH)
    assert disk.probe(ctx, "/dev/disk/by-partlabel/drbd-r0").kind == disk.EMPTY


def test_a_partition_holding_a_filesystem_is_foreign(ctx: Ctx, runner: FakeRunner) -> None:
    runner.script("blkid", out=FRESH + "UUID=1234\nTYPE=ext4\nUSAGE=filesystem\n")
    found = disk.probe(ctx, "/dev/disk/by-partlabel/drbd-r0")
    assert found.kind == "foreign" and found.detail["TYPE"] == "ext4"


def test_a_partition_with_our_drbd_metadata_is_ours(ctx: Ctx, runner: FakeRunner) -> None:
    runner.script("blkid", out=FRESH + "TYPE=drbd\nUSAGE=raid\n")
    assert disk.probe(ctx, "/dev/disk/by-partlabel/drbd-r0").kind == disk.DRBD
