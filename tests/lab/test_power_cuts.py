"""The first-boot power-cut story against scripted consoles: each cut lands on the
boot that reached its point, in order per node, and both nodes are watched at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from builder.lab import power_cuts
from builder.profile.load import load_profile

UP = "$ drbdadm up r0\nexit 0\n"
COPY = "$ cp -a --preserve=all --no-target-directory /var/lib/mysql /replica/var/lib/mysql.tmp\n"
SERVICES = "step services\n"


@dataclass
class ScriptedVm:
    """A console that prints one more scripted line per look; a cut starts the next boot's script."""

    boots_script: list[list[str]]
    boots: int = 1
    shown: int = 0
    events: list[str] = field(default_factory=list)

    def console_text(self) -> str:
        lines = self.boots_script[self.boots - 1] if self.boots <= len(self.boots_script) else []
        self.shown = min(self.shown + 1, len(lines))
        return "".join(lines[: self.shown])

    def kill(self) -> float:
        self.events.append(f"kill boot {self.boots} after {self.shown} lines")
        return 0.0

    def start(self) -> None:
        self.boots += 1
        self.shown = 0


def _cluster(a: ScriptedVm, b: ScriptedVm) -> Any:
    nodes = [SimpleNamespace(name="kava1", vm=a), SimpleNamespace(name="kava2", vm=b)]
    return SimpleNamespace(profile=load_profile("pbx-ha"), nodes=nodes)


def test_each_cut_lands_on_the_boot_that_reached_it(monkeypatch: Any) -> None:
    monkeypatch.setattr(power_cuts, "EVERY", 0.0)
    a = ScriptedVm([["boot\n", UP, "more\n"], ["boot\n", UP, "step drbd\n", COPY], ["boot\n", SERVICES], []])
    b = ScriptedVm([["boot\n", "wait\n", "wait\n", UP], []])
    done = power_cuts.first_boot_power_cuts(_cluster(a, b))

    assert [(d["node"], d["boot"]) for d in done] == [("kava1", 2), ("kava2", 2), ("kava1", 3), ("kava1", 4)]
    # kava1's first cut comes right after `up` exited, not later in the boot; the copy
    # cut is on the second boot (the first boot's text never counts again).
    assert a.events == ["kill boot 1 after 2 lines", "kill boot 2 after 4 lines", "kill boot 3 after 2 lines"]
    assert b.events == ["kill boot 1 after 4 lines"]
    assert [d["where"] for d in done if d["node"] == "kava1"][1] == "while copying /var/lib/mysql onto the replicated disk"


def test_the_cut_points_follow_the_profile() -> None:
    points = power_cuts.cuts("r0", None)
    assert [p.where for p in points if p.node == 0] == [
        "inside the DRBD step, right after up", "in the services step (stop, disable, link)"]
