from __future__ import annotations

import pytest

from builder.node import drbd
from builder.node.context import Ctx
from builder.node.drbd import Drbdadm, parse_proc_drbd
from builder.node.errors import NodeError

from .fakes import FakeRunner, World
from .tool_answers import answers

PROC_SYNCING = """\
version: 8.4.11 (api:1/proto:86-101)
srcversion: 2A0B5B7C3C3F9A4B8C1D2E3
 0: cs:SyncSource ro:Primary/Secondary ds:UpToDate/Inconsistent C r-----
    ns:123904 nr:0 dw:0 dr:125032 al:8 bm:0 lo:0 pe:2 ua:0 ap:0 ep:1 wo:f oos:924604
\t[=>..................] sync'ed: 11.9% (924604/1048508)K
\tfinish: 0:01:30 speed: 10,240 (10,240) K/sec
 1: cs:Unconfigured
 2: cs:WFConnection ro:Secondary/Unknown ds:UpToDate/DUnknown C r-----
    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
"""


def test_parse_connected_line_from_the_brief() -> None:
    m = parse_proc_drbd(" 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n")[0]
    assert (m.cs, m.role, m.peer_role, m.disk, m.peer_disk) == (
        "Connected", "Primary", "Secondary", "UpToDate", "UpToDate")
    assert (m.protocol, m.flags) == ("C", "r-----")
    assert m.configured and m.connected


def test_parse_sync_progress_and_several_minors() -> None:
    minors = parse_proc_drbd(PROC_SYNCING)
    assert sorted(minors) == [0, 1, 2]
    m = minors[0]
    assert m.cs == "SyncSource" and m.connected and m.disks == "UpToDate/Inconsistent"
    assert m.sync_percent == 11.9 and m.out_of_sync_kib == 924604
    assert not minors[1].configured and minors[1].disk == "Unknown"
    assert minors[2].peer_role == "Unknown" and not minors[2].connected
    assert minors[2].sync_percent is None and minors[2].out_of_sync_kib == 0


def test_parse_no_minor_and_missing_proc(ctx: Ctx) -> None:
    assert parse_proc_drbd("version: 8.4.11 (api:1/proto:86-101)\n") == {}
    (ctx.root / "proc/drbd").unlink()
    assert drbd.status(ctx, 0).cs == "Unconfigured"


def test_status_as_dict_is_json_ready() -> None:
    d = parse_proc_drbd(PROC_SYNCING)[0].as_dict()
    assert d["connected"] is True and d["sync_percent"] == 11.9 and d["minor"] == 0


@pytest.mark.parametrize(
    ("key", "expected"),
    [("dump-md/clean", drbd.CLEAN), ("dump-md/none", drbd.NO_MD), ("dump-md/unclean", drbd.UNCLEAN)],
)
def test_metadata_reads_the_real_answer(ctx: Ctx, runner: FakeRunner, key: str, expected: str) -> None:
    a = answers()[key]
    runner.script("drbdadm", "dump-md", rc=a["rc"], out=a["stdout"], err=a["stderr"])
    assert Drbdadm(ctx, "r0", 0).metadata() == expected
    assert Drbdadm(ctx, "r0", 0).has_metadata() is (expected != drbd.NO_MD)


def test_unclean_metadata_is_cleaned_by_apply_al(world: World, ctx: Ctx, runner: FakeRunner) -> None:
    """The lab's kava1: power lost while up; dump-md then says "unclean" (exit 1)."""
    world.md, world.md_clean = True, False
    adm = Drbdadm(ctx, "r0", 0)
    assert adm.metadata() == drbd.UNCLEAN
    adm.apply_al()
    assert adm.metadata() == drbd.CLEAN
    assert runner.commands("drbdadm", "create-md") == []


def test_has_metadata_unknown_answer_raises(ctx: Ctx, runner: FakeRunner) -> None:
    runner.script("drbdadm", "dump-md", rc=10, err="'r0' not defined in your config")
    with pytest.raises(NodeError, match="cannot tell whether r0 has DRBD metadata"):
        Drbdadm(ctx, "r0", 0).has_metadata()


def test_attached_device_counts_as_metadata_without_asking(
    world: World, ctx: Ctx, runner: FakeRunner
) -> None:
    world.md = world.up = True
    world.write_proc()
    assert Drbdadm(ctx, "r0", 0).metadata() == drbd.CLEAN  # in use: not asked (dump-md would say unclean)
    assert runner.calls == []


def test_up_is_skipped_when_already_up(world: World, ctx: Ctx, runner: FakeRunner) -> None:
    world.md = world.up = True
    world.write_proc()
    Drbdadm(ctx, "r0", 0).up()
    assert runner.calls == []
