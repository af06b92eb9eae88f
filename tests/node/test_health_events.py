"""The event state machine: one event per transition, baseline, anti-flap, reminders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.node import cli, events

from .test_health import CONNECTED, Node, make_node

ALERTS = {"recipients": ["ops@example.invalid"], "sender": "pbx-ha@example.invalid", "reminder_s": 1800}
REPL_LOST = "peer kava2 lost on replication link (no reply from 10.1.1.2)"


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Node:
    return make_node(tmp_path, monkeypatch, alerts=ALERTS)


def test_first_run_is_a_baseline_then_a_condition_needs_two_runs(node: Node) -> None:
    node.down = {"10.1.1.2"}
    assert node.run() == []  # baseline: seen once
    assert node.state()["conditions"]["peer.replication"]["announced"] is False
    assert node.run() == [REPL_LOST]
    assert node.run() == []
    assert node.run() == []


def test_recovered_once_after_two_clear_runs(node: Node) -> None:
    node.down = {"10.1.1.2"}
    node.run(), node.run()
    node.down = set()
    assert node.run() == []
    assert node.run() == ["recovered: peer kava2 reachable on replication link"]
    assert node.run() == []
    assert events.status_section(node.ctx, node.cluster)["healthy"] is True
    assert node.run(minutes=31) == []
    assert "peer.replication" not in node.state()["conditions"]  # forgotten once its flap window passed


def test_a_one_run_blip_says_nothing(node: Node) -> None:
    node.run()
    node.down = {"10.1.1.2"}
    assert node.run() == []
    node.down = set()
    assert [node.run() for _ in range(30)] == [[]] * 30


def test_settling_after_boot_then_one_cut_and_its_heal_is_no_flap(node: Node) -> None:
    # The lab: DRBD not yet connected at the first run after boot, connected, then the
    # replication link cut and healed. The heal is mailed after two clear runs.
    node.down = {"10.1.1.2"}
    assert node.run() == []  # baseline, still settling
    node.down = set()
    assert node.run() == []
    node.down = {"10.1.1.2"}
    assert node.run() == [] and node.run() == [REPL_LOST]
    node.down = set()
    assert node.run() == []
    assert events.status_section(node.ctx, node.cluster)["recovering"] == ["peer.replication"]
    assert node.run() == ["recovered: peer kava2 reachable on replication link"]
    assert events.status_section(node.ctx, node.cluster)["recovering"] == []


def test_a_flapping_link_is_announced_once_not_a_storm(node: Node) -> None:
    node.run()
    texts = []
    for i in range(120):  # two hours of down/up every other minute
        node.down = {"10.1.1.2"} if i % 2 == 0 else set()
        texts += node.run()
    assert texts == [REPL_LOST + " (flapping)"] + [  # then only the reminders, every reminder_s
        f"still: {REPL_LOST} (for {t})" for t in ("30 min", "1 h 0 min", "1 h 30 min")]
    node.down = set()
    stable = [t for _ in range(12) for t in node.run()]
    assert stable == ["recovered: peer kava2 reachable on replication link"]


def test_a_slower_flap_is_announced_at_most_once_per_min_gap(node: Node) -> None:
    node.run()
    got = []
    for i in range(180):  # down 2, up 2: each state long enough to be "confirmed"
        node.down = {"10.1.1.2"} if (i // 2) % 2 == 0 else set()
        got += [(node.world.now, t) for t in node.run() if not t.startswith("still: ")]
    assert [t for _, t in got] == [REPL_LOST, "recovered: peer kava2 reachable on replication link",
                                   REPL_LOST + " (flapping)"]
    assert got[2][0] - got[0][0] >= events.MIN_GAP_S


def test_reminders_follow_reminder_s(node: Node) -> None:
    node.down = {"10.1.1.2"}
    node.run()
    assert node.run() == [REPL_LOST]
    got = [(i, t) for i in range(1, 121) for t in node.run()]
    assert got == [(30, f"still: {REPL_LOST} (for 31 min)"), (60, f"still: {REPL_LOST} (for 1 h 1 min)"),
                   (90, f"still: {REPL_LOST} (for 1 h 31 min)"), (120, f"still: {REPL_LOST} (for 2 h 1 min)")]


def test_reminder_default_is_an_hour_without_alerts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = make_node(tmp_path, monkeypatch)
    node.down = {"10.1.1.2"}
    node.run(), node.run()
    got = [t for _ in range(130) for t in node.run()]
    assert len(got) == 2 and all(t.startswith("still: ") for t in got)
    assert node.sent == []  # alerts: null: journal only


def test_reboot_is_a_new_baseline_without_a_recovered_storm(node: Node) -> None:
    node.down = {"10.1.1.2", "192.168.0.101"}
    node.run(), node.run()
    assert len(node.state()["conditions"]) == 2
    node.down = set()
    node.reboot("boot-2")
    node.world.now = 30.0  # the monotonic clock starts again
    assert node.run() == []
    assert [node.run() for _ in range(5)] == [[]] * 5


def test_failover_is_reported_by_the_new_holder_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kava1 = make_node(tmp_path, monkeypatch, "kava1", active=True)
    kava2 = make_node(tmp_path, monkeypatch, "kava2", active=False)
    assert kava1.run() == kava2.run() == []
    # kava1's heartbeat dies; kava2 takes the resources.
    kava1.holds_vip(False)
    kava1.world.units["heartbeat.service"] = "inactive"
    kava1.drbd("Connected", "Secondary/Primary", "UpToDate/UpToDate")
    kava2.holds_vip(True)
    kava2.world.mounted = True
    kava2.drbd("Connected", "Primary/Secondary", "UpToDate/UpToDate")
    assert kava2.run() == ["failover: kava2 took over (VIP 192.168.0.105)"]
    assert not any(t.startswith("failover") for t in kava1.run())
    assert kava2.run() == []


def test_split_brain_then_resync_finished(node: Node) -> None:
    assert node.run() == []  # Connected: DRBD seen connected in this boot
    node.drbd("StandAlone", "Primary/Unknown", "UpToDate/DUnknown")
    assert node.run() == []
    assert node.run() == ["split-brain detected on r0"]
    assert node.run() == []
    node.drbd("SyncSource", "Primary/Secondary", "UpToDate/Inconsistent",
              "\t[==>.................] sync'ed: 12.0% (450/512)M\n")
    assert node.run() == []
    assert sorted(node.run()) == ["DRBD r0 resyncing (SyncSource, 12.0%)",
                                  "recovered: r0 reconnected after split-brain"]
    node.drbd("Connected", "Primary/Secondary", "UpToDate/UpToDate")
    assert node.run() == []
    assert node.run() == ["resync finished on r0"]


def test_disconnect_and_service_events(node: Node) -> None:
    node.run()
    node.drbd("WFConnection", "Primary/Unknown", "UpToDate/DUnknown")
    node.failing = {"mariadb": "tcp 127.0.0.1:3306: Connection refused"}
    node.run()
    assert sorted(node.run()) == ["DRBD r0 disconnected (WFConnection)",
                                  "service mariadb unhealthy: tcp 127.0.0.1:3306: Connection refused"]


def test_one_mail_per_run_and_every_event_in_the_journal(node: Node) -> None:
    node.run()
    node.down = {"10.1.1.2", "192.168.0.101"}
    node.run()
    assert node.sent == []
    texts = node.run()
    assert len(texts) == 2 and len(node.sent) == 1
    subject, body = node.sent[0]
    assert subject == f"[pbx-ha] kava1: {REPL_LOST.replace('replication', 'public').replace('10.1.1.2', '192.168.0.101')} (+1 more)"
    assert all(t in body for t in texts)
    logged = [c[-1] for c in node.runner.commands("logger")]
    assert logged == [f"EVENT warning {t}" for t in texts]


def test_a_failed_mail_is_retried_with_the_next_batch(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    node.run()
    node.down = {"10.1.1.2"}
    node.run()
    failed = events.mail.Sent(False, "connection refused by the SMTP host", "check", "")
    assert events.run(node.ctx, node.cluster, send=lambda *a: failed).events  # the announce, not mailed
    assert len(node.state()["unsent"]) == 1
    node.down = set()
    assert node.run() == []  # nothing new, but the outbox goes out now
    assert node.sent[-1][0] == f"[pbx-ha] kava1: {REPL_LOST}" and node.state()["unsent"] == []
    assert node.run() == ["recovered: peer kava2 reachable on replication link"]
    assert len(node.sent) == 2


def test_health_cli_quiet_prints_nothing(node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    node.down = {"10.1.1.2"}
    for _ in range(2):
        node.world.now += 60
        assert cli.main(["health", "--quiet"], ctx=node.ctx) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert node.state()["conditions"]["peer.replication"]["announced"] is True
    assert cli.main(["health"], ctx=node.ctx) == 0
    assert f"warning  {REPL_LOST}" in capsys.readouterr().out


def test_health_waits_for_provisioning(node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    (node.world.root / "var/lib/cluster/state.json").write_text(json.dumps({"format": 1, "done": []}))
    assert cli.main(["health"], ctx=node.ctx) == 0
    assert node.runner.calls == []
    assert "not provisioned" in capsys.readouterr().out


def test_status_only_reads_health_json(node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    node.down = {"10.1.1.2"}
    node.run(), node.run()
    path = node.world.root / "var/lib/cluster/health.json"
    before = path.read_bytes(), path.stat().st_mtime_ns
    node.runner.calls.clear()
    assert cli.main(["status", "--json"], ctx=node.ctx) == 0
    section = json.loads(capsys.readouterr().out)["health"]
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert not node.runner.commands("msmtp") and not node.runner.commands("logger")
    assert not node.runner.commands("ping")
    assert section["healthy"] is False
    assert [(c["key"], c["severity"], c["message"]) for c in section["conditions"]] == [
        ("peer.replication", "warning", REPL_LOST)]
    assert section["last_event"]["text"] == REPL_LOST


def test_status_before_any_health_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = make_node(tmp_path, monkeypatch)
    assert events.status_section(node.ctx, node.cluster) == {"checked": None, "conditions": [], "last_event": None}


def test_a_cut_replication_link_is_mailed_once_by_the_holder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kava1 = make_node(tmp_path, monkeypatch, "kava1", active=True, alerts=ALERTS)
    kava2 = make_node(tmp_path, monkeypatch, "kava2", active=False, alerts=ALERTS)
    kava1.run(), kava2.run()
    kava1.down, kava2.down = {"10.1.1.2"}, {"10.1.1.1"}
    kava1.drbd("WFConnection", "Primary/Unknown", "UpToDate/DUnknown")
    kava2.drbd("WFConnection", "Secondary/Unknown", "Outdated/DUnknown")  # dopd fenced it
    for _ in range(3):
        kava1.run(), kava2.run()
    assert len(kava1.sent) == 1 and "DRBD r0 disconnected (WFConnection)" in kava1.sent[0][1]
    assert kava2.sent == []  # the holder told the operator already
    logged = [c[-1] for c in kava2.runner.commands("logger")]
    assert "EVENT warning DRBD r0 disconnected (WFConnection)" in logged  # but kava2's journal has it
    kava1.down = kava2.down = set()
    kava1.drbd(*CONNECTED)
    kava2.drbd("Connected", "Secondary/Primary", "UpToDate/UpToDate")
    for _ in range(3):
        kava1.run(), kava2.run()
    assert len(kava1.sent) == 2 and "recovered: DRBD r0 connected" in kava1.sent[1][1]
    assert kava2.sent == []


def test_the_standby_mails_what_both_see_when_the_holder_is_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kava2 = make_node(tmp_path, monkeypatch, "kava2", active=False, alerts=ALERTS)
    kava2.run()
    kava2.down = {"10.1.1.1", "192.168.0.100"}  # kava1 gone from both links, VIP still on it (no takeover yet)
    kava2.drbd("WFConnection", "Secondary/Unknown", "UpToDate/DUnknown")
    kava2.run(), kava2.run()
    assert len(kava2.sent) == 1
    assert "DRBD r0 disconnected (WFConnection)" in kava2.sent[0][1]
    assert "peer kava1 lost on public link" in kava2.sent[0][1]


def test_the_clusters_first_start_is_no_failover(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kava1 = make_node(tmp_path, monkeypatch, "kava1", active=False, alerts=ALERTS)
    kava1.down = {"192.168.0.105"}  # heartbeat still in initdead: the VIP is nowhere yet
    kava1.drbd("Connected", "Secondary/Secondary", "UpToDate/UpToDate")
    kava1.run()
    kava1.down = set()
    kava1.holds_vip(True)
    kava1.world.mounted = True
    kava1.drbd(*CONNECTED)
    assert kava1.run() == []
    assert not any("failover" in subject for subject, _ in kava1.sent)


def test_auto_failback_to_the_preferred_node_is_a_failback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kava1 = make_node(tmp_path, monkeypatch, "kava1", active=False, alerts=ALERTS)  # rebooted, kava2 serves
    kava1.drbd("Connected", "Secondary/Primary", "UpToDate/UpToDate")
    kava1.run()
    kava1.run()  # the VIP answers from kava2
    kava1.holds_vip(True)
    kava1.world.mounted = True
    kava1.drbd(*CONNECTED)
    assert kava1.run() == ["failback: kava1 took the services back (VIP 192.168.0.105)"]


def test_a_peer_dying_before_it_was_seen_holding_the_vip_is_still_a_failover(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The lab under slow TCG: kava1 took the VIP and died before kava2's next cron run.
    kava2 = make_node(tmp_path, monkeypatch, "kava2", active=False, alerts=ALERTS)
    kava2.down = {"192.168.0.105"}  # heartbeat still in initdead: the VIP is nowhere yet
    kava2.run()
    kava2.run()
    kava2.down = {"10.1.1.1", "192.168.0.100"}
    kava2.holds_vip(True)
    kava2.world.mounted = True
    kava2.drbd("WFConnection", "Primary/Unknown", "UpToDate/DUnknown")
    assert "failover: kava2 took over (VIP 192.168.0.105)" in kava2.run()


def test_a_failover_detected_only_after_the_vip_went_silent_is_still_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kava2 = make_node(tmp_path, monkeypatch, "kava2", active=False, alerts=ALERTS)
    kava2.run()  # the VIP answers from kava1
    kava2.down = {"10.1.1.1", "192.168.0.100", "192.168.0.105"}  # kava1 dies; a run falls before the takeover
    kava2.run()
    kava2.holds_vip(True)
    kava2.world.mounted = True
    kava2.drbd("WFConnection", "Primary/Unknown", "UpToDate/DUnknown")
    assert "failover: kava2 took over (VIP 192.168.0.105)" in kava2.run()
