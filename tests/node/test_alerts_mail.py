"""Alert mail end to end: the real msmtp, the build side's rendered msmtprc, and a
real SMTP server on loopback that requires STARTTLS and AUTH."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import replace
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from builder.node import cli, events, mail
from builder.node.context import Ctx
from builder.node.runner import Result, SubprocessRunner
from builder.profile.load import load_profile
from builder.render import render
from tests.conftest import FAKE_SECRETS, pbx_ha_data, write_profile
from tests.smtp_relay import USER, Sink, smtp_relay

from .test_health import Node, make_node

WRONG = "FAKE-wrong-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[Sink, int, Path]]:
    with smtp_relay(tmp_path, FAKE_SECRETS.smtp_password) as r:
        yield r


def install_mail(root: Path, port: int, trust: Path, password: str = FAKE_SECRETS.smtp_password) -> dict[str, Any]:
    """Render the profile as the build side does and put its mail files under `root`,
    unchanged; returns the rendered cluster.json."""
    data = pbx_ha_data()
    data["alerts"]["smtp"] = {"host": "localhost", "port": port, "starttls": True,
                              "tls_trust_file": str(trust), "user": USER}
    folder = root.parent / f"{root.name}-profile"
    folder.mkdir()
    tree = render(load_profile(str(write_profile(folder, data))), replace(FAKE_SECRETS, smtp_password=password))
    doc: dict[str, Any] = json.loads(tree.get("/etc/cluster/cluster.json").data)
    for path in ("/etc/msmtprc", "/etc/cluster/aliases"):
        f = tree.get(path)
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.data)
        target.chmod(f.mode)
    return doc


def provisioned_root(tmp_path: Path, doc: dict[str, Any]) -> Path:
    root = tmp_path / "root"
    (root / "etc/cluster").mkdir(parents=True, exist_ok=True)
    (root / "etc/cluster/cluster.json").write_text(json.dumps(doc))
    state = root / "var/lib/cluster/state.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"format": 1, "node": "kava1", "done": []}))
    return root


def alerts_test(tmp_path: Path, port: int, trust: Path, capsys: pytest.CaptureFixture[str],
                caplog: pytest.LogCaptureFixture, password: str = FAKE_SECRETS.smtp_password) -> tuple[int, str]:
    root = tmp_path / "root"
    doc = install_mail(root, port, trust, password)
    provisioned_root(tmp_path, doc)
    rc = cli.main(["alerts", "test"], ctx=Ctx(runner=SubprocessRunner(), root=root))
    out = capsys.readouterr()
    return rc, out.out + out.err + caplog.text


def test_alerts_test_reaches_the_recipients(tmp_path: Path, relay: tuple[Sink, int, Path],
                                            capsys: pytest.CaptureFixture[str],
                                            caplog: pytest.LogCaptureFixture) -> None:
    sink, port, cert = relay
    rc, out = alerts_test(tmp_path, port, cert, capsys, caplog)
    assert rc == 0, out
    assert "sent a test mail to ops@example.invalid" in out
    assert len(sink.messages) == 1
    env = sink.messages[0]
    assert env.mail_from == "pbx-ha@example.invalid"
    assert env.rcpt_tos == ["ops@example.invalid"]
    msg = message_from_bytes(env.original_content or b"")
    assert msg["Subject"] == "[pbx-ha] kava1: test mail from clusterctl"
    assert msg["From"] == "pbx-ha@example.invalid" and msg["To"] == "ops@example.invalid"
    assert FAKE_SECRETS.smtp_password not in out


def test_wrong_password_says_auth_and_never_shows_it(tmp_path: Path, relay: tuple[Sink, int, Path],
                                                     capsys: pytest.CaptureFixture[str],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    sink, port, cert = relay
    caplog.set_level("DEBUG")
    rc, out = alerts_test(tmp_path, port, cert, capsys, caplog, password=WRONG)
    assert rc == 1
    assert "could not send the test mail: authentication failed" in out
    assert "hint: check alerts.smtp.user and the SMTP password" in out
    assert WRONG not in out and FAKE_SECRETS.smtp_password not in out
    assert sink.messages == []


def test_connection_refused(tmp_path: Path, relay: tuple[Sink, int, Path], capsys: pytest.CaptureFixture[str],
                            caplog: pytest.LogCaptureFixture) -> None:
    _, _, cert = relay
    rc, out = alerts_test(tmp_path, free_port(), cert, capsys, caplog)
    assert rc == 1
    assert "could not send the test mail: connection refused by the SMTP host" in out


def test_untrusted_certificate(tmp_path: Path, relay: tuple[Sink, int, Path], capsys: pytest.CaptureFixture[str],
                               caplog: pytest.LogCaptureFixture) -> None:
    sink, port, _ = relay
    other = tmp_path / "other.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                    "-keyout", str(tmp_path / "other.key"), "-out", str(other)], check=True, capture_output=True)
    rc, out = alerts_test(tmp_path, port, other, capsys, caplog)
    assert rc == 1
    assert "could not send the test mail: TLS: TLS certificate verification failed" in out
    assert "hint: check alerts.smtp.tls_trust_file" in out
    assert sink.messages == []


def test_no_alerts_no_mail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from .fakes import cluster_doc
    root = provisioned_root(tmp_path, cluster_doc())
    assert cli.main(["alerts", "test"], ctx=Ctx(runner=SubprocessRunner(), root=root)) == 1
    assert "alerts: null" in capsys.readouterr().out


@pytest.mark.parametrize(("rc", "err", "cause"), [
    (68, "msmtp: cannot locate host smtp.example.invalid: Name or service not known", "DNS"),
    (75, "msmtp: cannot connect to localhost, port 1: Connection refused", "connection refused"),
    (77, "msmtp: authentication failed (method PLAIN)", "authentication failed"),
    (69, "msmtp: TLS handshake failed: Error in the pull function.", "TLS: TLS handshake failed"),
    (74, "msmtp: /etc/msmtprc: No such file or directory", "cannot read the msmtp config /etc/msmtprc"),
    (127, "msmtp: command not found", "msmtp is not installed"),
    (76, "msmtp: server message: 550 sender rejected", "the relay rejected the message"),
])
def test_msmtp_failures_map_to_one_line(rc: int, err: str, cause: str) -> None:
    a = mail.Alerts(("ops@example.invalid",), "pbx-ha@example.invalid", 3600, "/etc/msmtprc", "/etc/cluster/aliases")
    got, hint = mail.explain(Result(("msmtp",), rc, "", err), a)
    assert got.startswith(cause) and hint


def test_scrub_drops_any_password_line() -> None:
    assert mail.scrub("msmtp: x\npassword secret\nPassword: y\nok") == "msmtp: x\nok"


class Mixed:
    """The simulated node for everything but msmtp, which really runs."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.real = SubprocessRunner()

    def __call__(self, argv: Sequence[str], *, check: bool = True, input: str | None = None,
                 timeout: float | None = None) -> Result:
        if argv[0] == "msmtp":
            return self.real(argv, check=check, input=input, timeout=timeout)
        return self.node.runner(argv, check=check, input=input, timeout=timeout)


def test_a_health_event_is_mailed_through_msmtp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                relay: tuple[Sink, int, Path]) -> None:
    sink, port, cert = relay
    node = make_node(tmp_path, monkeypatch)
    rendered = install_mail(node.world.root, port, cert)
    node.doc["alerts"], node.doc["paths"] = rendered["alerts"], rendered["paths"]
    ctx = Ctx(runner=Mixed(node), root=node.world.root, env={}, sleep=node.world.sleep, clock=node.world.clock)
    node.drbd("Connected", "Primary/Secondary", "UpToDate/UpToDate")
    assert events.run(ctx, node.cluster).events == []
    node.drbd("StandAlone", "Primary/Unknown", "UpToDate/DUnknown")
    for _ in range(2):
        node.world.now += 60
        outcome = events.run(ctx, node.cluster)
    assert [e.text for e in outcome.events] == ["split-brain detected on r0"]
    assert outcome.mail is not None and outcome.mail.ok, outcome.mail
    assert sink.subjects() == ["[pbx-ha] kava1: split-brain detected on r0"]
    env = sink.messages[0]
    assert env.rcpt_tos == ["ops@example.invalid"] and env.mail_from == "pbx-ha@example.invalid"
    assert b"critical split-brain detected on r0" in (env.original_content or b"")


def test_a_health_mail_with_a_wrong_password_is_kept_for_the_next_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relay: tuple[Sink, int, Path]) -> None:
    sink, port, cert = relay
    node = make_node(tmp_path, monkeypatch)
    rendered = install_mail(node.world.root, port, cert, password=WRONG)
    node.doc["alerts"], node.doc["paths"] = rendered["alerts"], rendered["paths"]
    ctx = Ctx(runner=Mixed(node), root=node.world.root, env={}, sleep=node.world.sleep, clock=node.world.clock)
    node.down = {"10.1.1.2"}
    events.run(ctx, node.cluster)
    node.world.now += 60
    outcome = events.run(ctx, node.cluster)
    assert outcome.mail is not None and outcome.mail.cause == "authentication failed"
    assert WRONG not in outcome.mail.detail and sink.messages == []
    state = (node.world.root / "var/lib/cluster/health.json").read_text()
    assert len(json.loads(state)["unsent"]) == 1 and WRONG not in state
