"""The status port answers read-only requests; anything else is refused."""

from __future__ import annotations

from builder.node import statusport
from builder.node.config import Cluster
from builder.node.context import Ctx
from tests.node.fakes import FakeRunner


def test_journal_lines_parsed_with_their_timestamps(ctx: Ctx, runner: FakeRunner, cluster: Cluster) -> None:
    runner.script("journalctl", out="1764280000.250000 kava2 heartbeat[81]: WARN: node kava1: is dead\n"
                                    "-- No entries --\n")
    reply = statusport.answer(ctx, cluster, "journal heartbeat.service 1764279990.5")
    assert reply["lines"] == [[1764280000.25, "kava2 heartbeat[81]: WARN: node kava1: is dead"]]
    assert runner.calls[-1][:5] == ("journalctl", "-u", "heartbeat.service", "--since", "@1764279990.500")


def test_unknown_or_unsafe_requests_are_refused(ctx: Ctx, runner: FakeRunner, cluster: Cluster) -> None:
    for line in ("reboot", "journal heartbeat;rm 1", "status now"):
        assert "error" in statusport.answer(ctx, cluster, line)
    assert runner.calls == []


def test_disabled_without_the_credential(ctx: Ctx, runner: FakeRunner, cluster: Cluster) -> None:
    assert statusport.serve(ctx, cluster) == 0
    assert runner.calls == []


def test_grep_reads_every_unit_for_a_word(ctx: Ctx, runner: FakeRunner, cluster: Cluster) -> None:
    runner.script("journalctl", out="1764280001.5 kava2 ResourceManager(default)[90]: info: Running "
                                    "/etc/ha.d//resource.d/IPaddr2 192.168.0.105/24/lan0 start\n")
    reply = statusport.answer(ctx, cluster, "grep resource.d 1764279990.5")
    assert reply["lines"][0][0] == 1764280001.5 and "IPaddr2" in reply["lines"][0][1]
    assert runner.calls[-1][:3] == ("journalctl", "--grep", r"resource\.d")
    assert "error" in statusport.answer(ctx, cluster, "grep a|b 1")
