from __future__ import annotations

import fcntl
import logging
from pathlib import Path

import pytest

from builder.node import cli
from builder.node.runner import CommandError, SubprocessRunner

from .fakes import FakeRunner, World, make_ctx


def test_logs_argv_exit_code_and_output(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="clusterctl.run")
    r = SubprocessRunner()(["sh", "-c", "echo to-out; echo to-err >&2; exit 3"], check=False)
    assert (r.returncode, r.stdout, r.stderr) == (3, "to-out\n", "to-err\n")
    text = caplog.text
    assert "$ sh -c 'echo to-out; echo to-err >&2; exit 3'" in text
    assert "exit 3" in text and "to-out" in text and "to-err" in text


def test_check_raises_with_the_command_and_output() -> None:
    with pytest.raises(CommandError, match=r"exit 3\): sh -c 'echo boom; exit 3'\nboom"):
        SubprocessRunner()(["sh", "-c", "echo boom; exit 3"])


def test_stdin_is_empty_so_questions_get_no_answer() -> None:
    r = SubprocessRunner(default_timeout=10)(["sh", "-c", "read answer; echo got:$answer"],
                                             check=False)
    assert r.stdout == "got:\n"  # EOF at once, never a hang, never a "yes"


def test_missing_command_and_timeout() -> None:
    run = SubprocessRunner()
    assert run(["clusterctl-no-such-tool"], check=False).returncode == 127
    assert run(["sleep", "5"], check=False, timeout=0.2).returncode == 124


def test_concurrent_provision_is_refused(tmp_path: Path) -> None:
    world = World(tmp_path / "root")
    world.install(cmdline="cluster.node=kava1")
    lock = world.root / "var/lib/cluster/provision.lock"
    lock.parent.mkdir(parents=True)
    runner = FakeRunner(world)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert cli.main(["provision"], ctx=make_ctx(world, runner)) == 1
    assert runner.acting() == []
