"""The rendered msmtp config delivers to a real SMTP server, over STARTTLS with AUTH."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes
from pathlib import Path

import pytest

from builder.profile.load import load_profile
from builder.render import render
from tests.conftest import FAKE_SECRETS, pbx_ha_data, write_profile
from tests.smtp_relay import Sink, smtp_relay


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[Sink, int, Path]]:
    with smtp_relay(tmp_path, FAKE_SECRETS.smtp_password) as r:
        yield r


def _msmtprc(tmp_path: Path, port: int, cert: Path, password: str) -> Path:
    data = pbx_ha_data()
    data["alerts"]["smtp"] = {"host": "localhost", "port": port, "starttls": True, "tls_trust_file": str(cert),
                              "user": "pbx-ha@example.invalid"}
    secrets = replace(FAKE_SECRETS, smtp_password=password)
    tree = render(load_profile(str(write_profile(tmp_path, data))), secrets)
    # The rendered files, with the aliases path pointed at the rendered aliases.
    aliases = tmp_path / "aliases"
    aliases.write_bytes(tree.get("/etc/cluster/aliases").data)
    conf = tmp_path / "msmtprc"
    conf.write_text(tree.get("/etc/msmtprc").data.decode().replace("/etc/cluster/aliases", str(aliases)))
    conf.chmod(0o600)  # msmtp refuses a password file others can read
    return conf


def _send(conf: Path, subject: str) -> subprocess.CompletedProcess[str]:
    mail = f"To: root\nSubject: {subject}\n\nDRBD r0: split-brain detected\n"
    # -t: recipients from the headers; `root` goes through the rendered aliases.
    return subprocess.run(["msmtp", "-C", str(conf), "-t"], input=mail, capture_output=True, text=True, timeout=30)


def test_alert_reaches_the_recipients_over_starttls(tmp_path: Path, relay: tuple[Sink, int, Path]) -> None:
    sink, port, cert = relay
    conf = _msmtprc(tmp_path, port, cert, FAKE_SECRETS.smtp_password)

    proc = _send(conf, "[pbx-ha] split-brain on r0")

    assert proc.returncode == 0, proc.stderr
    assert len(sink.messages) == 1
    envelope = sink.messages[0]
    assert envelope.mail_from == "pbx-ha@example.invalid"
    assert envelope.rcpt_tos == ["ops@example.invalid"]
    assert message_from_bytes(envelope.original_content or b"")["Subject"] == "[pbx-ha] split-brain on r0"


def test_wrong_password_fails_clearly_without_printing_it(tmp_path: Path, relay: tuple[Sink, int, Path]) -> None:
    sink, port, cert = relay
    conf = _msmtprc(tmp_path, port, cert, "FAKE-wrong-password")

    proc = _send(conf, "test")

    assert proc.returncode != 0
    assert "authentication failed" in proc.stderr.lower()
    assert "FAKE-wrong-password" not in proc.stdout + proc.stderr
    assert sink.messages == []
