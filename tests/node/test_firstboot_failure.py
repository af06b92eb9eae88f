"""Issue 20: a failed first boot is loud, and the partner does not sit idle silently.

Policy (the non-preferred node when the preferred one never finishes): wait
(bounded), then start heartbeat and alert. It never forces primary, never makes
a filesystem: heartbeat there takes the resources only if DRBD lets it, i.e. with
UpToDate data replicated from the preferred node. Its own DRBD data is otherwise
Inconsistent (never synced), and forcing it could split the cluster's history
from whatever the preferred node already made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from builder.node import cli, config, mail, status, statusport
from builder.node.errors import EXIT_FAILED

from .fakes import FakeRunner, Peer, World, cluster_doc, make_ctx
from .test_health import Node, make_node

ALERTS = {"recipients": ["ops@example.invalid"], "sender": "pbx-ha@example.invalid", "reminder_s": 1800}


def failing_world(tmp_path: Path) -> World:
    """kava1 alone with metadata that is not ours: the drbd step must stop."""
    doc = cluster_doc(peer_timeout_s=20)
    doc["alerts"] = ALERTS
    w = World(tmp_path / "root", name="kava1", peer=Peer(present=False), md=True, disk="Inconsistent")
    w.install(doc, cmdline="cluster.node=kava1")
    (w.root / "dev/console").write_text("")  # a console to write to
    return w


@pytest.fixture
def mails(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    sent: list[tuple[str, str]] = []

    def send(ctx: Any, a: Any, subject: str, body: str) -> mail.Sent:
        sent.append((subject, body))
        return mail.Sent(True)

    monkeypatch.setattr(mail, "send", send)
    return sent


def state(world: World) -> dict[str, Any]:
    return json.loads((world.root / "var/lib/cluster/state.json").read_text())


def test_a_failed_first_boot_says_so_everywhere_and_mails_once(
        tmp_path: Path, mails: list[tuple[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    world = failing_world(tmp_path)
    runner = FakeRunner(world)
    assert cli.main(["boot"], ctx=make_ctx(world, runner)) == EXIT_FAILED
    err = state(world)["error"]
    assert err["step"] == "drbd" and "not forcing primary" in err["message"]
    assert "clusterctl provision" in err["fix"] and "resumes at step drbd" in err["fix"]
    console = (world.root / "dev/console").read_text()
    assert "first boot of kava1 FAILED at step drbd" in console and err["message"] in console
    assert "fix:" in console
    assert any(c[:5] == ("logger", "-t", "clusterctl", "-p", "user.crit") and "FAILED" in c[-1]
               for c in runner.calls)
    assert "FAILED at step drbd" in capsys.readouterr().err  # the journal (stderr under systemd)
    assert len(mails) == 1
    subject, body = mails[0]
    assert subject.startswith("[pbx-ha] kava1: first boot FAILED at step drbd: ")
    assert err["message"] in subject and err["fix"] in body
    assert not runner.commands("systemctl", "start", "heartbeat.service")

    # every later boot fails the same way: said again, not mailed again
    world.reboot()
    assert cli.main(["boot"], ctx=make_ctx(world, FakeRunner(world))) == EXIT_FAILED
    assert len(mails) == 1 and state(world)["error"]["mailed"]


def test_status_and_the_status_port_show_the_failure(tmp_path: Path, mails: list[tuple[str, str]]) -> None:
    world = failing_world(tmp_path)
    ctx = make_ctx(world, FakeRunner(world))
    cli.main(["boot"], ctx=ctx)
    cluster = config.parse(json.loads((world.root / "etc/cluster/cluster.json").read_text()))
    text = status.render(status.collect(ctx, cluster))
    assert text.splitlines()[0].startswith("FIRST BOOT FAILED at step drbd: ")
    assert text.splitlines()[1].startswith("  fix: ")
    reply = statusport.answer(ctx, cluster, "status")
    prov = reply["status"]["provision"]
    assert prov["failed"] is True and prov["error"]["step"] == "drbd"
    assert "not forcing primary" in prov["error"]["message"]


def test_an_unsent_failure_mail_is_retried_by_the_health_cron(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = failing_world(tmp_path)
    answers = iter([mail.Sent(False, "connection refused by the SMTP host", "check alerts.smtp"), mail.Sent(True)])
    sent: list[str] = []

    def send(ctx: Any, a: Any, subject: str, body: str) -> mail.Sent:
        sent.append(subject)
        return next(answers)

    monkeypatch.setattr(mail, "send", send)
    cli.main(["boot"], ctx=make_ctx(world, FakeRunner(world)))
    assert "mailed" not in state(world)["error"]
    assert cli.main(["health", "--quiet"], ctx=make_ctx(world, FakeRunner(world))) == 0
    assert state(world)["error"]["mailed"] and len(sent) == 2
    cli.main(["health", "--quiet"], ctx=make_ctx(world, FakeRunner(world)))
    assert len(sent) == 2  # once sent, never again


def test_the_partner_waits_alerts_and_never_forces(tmp_path: Path) -> None:
    """kava2 first boot while kava1 never finishes: bounded waits, heartbeat, no force."""
    world = World(tmp_path / "root", name="kava2", peer=Peer(present=False))
    world.install(cluster_doc(peer_timeout_s=20), cmdline="cluster.node=kava2")
    runner = FakeRunner(world)
    assert cli.main(["boot"], ctx=make_ctx(world, runner)) == 0
    assert runner.destructive() == {"create-md": 1, "clear-bitmap": 0, "primary --force": 0, "mkfs": 0}
    assert not runner.commands("drbdadm", "primary")
    assert world.units["heartbeat.service"] == "active"  # the cluster forms once kava1 is fixed
    assert state(world)["partner"] == {"name": "kava1", "finished": False, "waited_s": 20}
    assert world.disk == "Inconsistent"  # nothing it could serve


def waiting_partner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Node:
    node = make_node(tmp_path, monkeypatch, "kava2", active=False, alerts=ALERTS)
    st = node.world.root / "var/lib/cluster/state.json"
    doc = json.loads(st.read_text())
    doc["partner"] = {"name": "kava1", "finished": False, "waited_s": 300}
    st.write_text(json.dumps(doc))
    node.world.units["heartbeat.service"] = "active"
    node.drbd("WFConnection", "Secondary/Unknown", "Inconsistent/DUnknown")
    node.down = {"192.168.0.105"}  # kava1 answers ping (its network is up) but nobody holds the VIP
    return node


def test_the_partner_mails_that_its_peer_never_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = waiting_partner(tmp_path, monkeypatch)
    assert node.run() == []  # baseline
    said = [t for t in node.run() if t.startswith("kava1 never finished its first boot")]
    assert len(said) == 1 and "kava2 has Inconsistent data and takes over only with UpToDate data" in said[0]
    assert len(node.sent) == 1 and node.sent[0][0].startswith("[pbx-ha] kava2: kava1 never finished its first boot")
    assert node.run() == []  # no storm

    node.down = set()  # kava1 was fixed: the cluster runs, the VIP answers
    node.drbd("Connected", "Secondary/Primary", "UpToDate/UpToDate")
    node.run()
    assert any("first boot is over" in t for t in node.run())
    node.reboot("boot-2")
    node.down = {"192.168.0.105"}  # later trouble is not blamed on the first boot
    node.run()
    assert all("first boot" not in t for t in node.run())
