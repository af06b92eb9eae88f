"""Power loss at every point of provisioning, then a rerun.

For each scenario, a reference run gives the final state. Then for every
command index N the run dies at N (power lost just before or just after the
command took effect, with or without a reboot in between), is run again, and
must reach the same final state with each destructive command executed exactly
once overall. The same again at every checkpoint between file operations.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builder.node import cli

from .fakes import FakeRunner, Peer, PowerLoss, World, cluster_doc, make_ctx, world_state

SCENARIOS: dict[str, Callable[[], tuple[str, Peer]]] = {
    "preferred-with-peer": lambda: ("kava1", Peer()),
    "preferred-alone": lambda: ("kava1", Peer(present=False)),
    "non-preferred": lambda: ("kava2", Peer(promotes_after=6, leaves_after=20)),
}


def new_world(tmp_path: Path, scenario: str, tag: str) -> World:
    name, peer = SCENARIOS[scenario]()
    w = World(tmp_path / tag, name=name, peer=peer)
    # A short peer timeout keeps the polling (in fake time) cheap.
    w.install(cluster_doc(peer_timeout_s=20), cmdline=f"cluster.node={name}")
    return w


def provision(world: World, runner: FakeRunner, hook: Any = None) -> int:
    return cli.main(["provision"], ctx=make_ctx(world, runner, hook))


def reference(tmp_path: Path, scenario: str) -> tuple[int, dict[str, Any], dict[str, int], list[str]]:
    world = new_world(tmp_path, scenario, "reference")
    runner = FakeRunner(world)
    events: list[str] = []
    assert provision(world, runner, events.append) == 0
    world.reboot()
    return runner.executed, world_state(world), runner.destructive(), events


def rerun_and_compare(
    world: World, first: FakeRunner, expected: dict[str, Any], destructive: dict[str, int],
    where: str,
) -> None:
    second = FakeRunner(world)
    assert provision(world, second) == 0, where
    world.reboot()
    total = {k: first.destructive()[k] + second.destructive()[k] for k in destructive}
    assert total == destructive, where
    assert world.violations == [], where
    assert world_state(world) == expected, where


@pytest.mark.parametrize("mode", ["after-then-reboot", "before-then-reboot", "after-no-reboot"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_power_loss_at_every_command(tmp_path: Path, scenario: str, mode: str) -> None:
    count, expected, destructive, _ = reference(tmp_path, scenario)
    assert destructive["create-md"] == 1
    for n in range(count):
        world = new_world(tmp_path, scenario, f"cut-{n}")
        runner = FakeRunner(world)
        runner.crash_at, runner.crash_after = n, mode.startswith("after")
        with pytest.raises(PowerLoss):
            provision(world, runner)
        if mode.endswith("then-reboot"):
            world.reboot()
        rerun_and_compare(world, runner, expected, destructive,
                          f"{scenario}: power lost {mode} command {n} {runner.cut}")


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_power_loss_at_every_checkpoint(tmp_path: Path, scenario: str) -> None:
    _, expected, destructive, events = reference(tmp_path, scenario)
    assert events  # state was moved or linked
    for i, event in enumerate(events):
        world = new_world(tmp_path, scenario, f"hook-{i}")
        runner = FakeRunner(world)

        def cut(e: str, at: str = event) -> None:
            if e == at:
                raise PowerLoss(e)

        with pytest.raises(PowerLoss):
            provision(world, runner, cut)
        world.reboot()
        rerun_and_compare(world, runner, expected, destructive, f"{scenario}: cut at {event}")
