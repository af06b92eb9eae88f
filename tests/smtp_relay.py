"""A real SMTP server on loopback for mail tests: STARTTLS required, then AUTH."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

USER = "pbx-ha@example.invalid"


@dataclass
class Sink:
    password: str
    messages: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 OK"

    def authenticate(self, server: object, session: Session, envelope: Envelope, mechanism: str,
                     data: object) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == USER.encode() \
            and data.password == self.password.encode()
        return AuthResult(success=ok, handled=False)

    def subjects(self) -> list[str]:
        return [message_from_bytes(m.original_content or b"")["Subject"] for m in self.messages]


@contextmanager
def smtp_relay(folder: Path, password: str) -> Iterator[tuple[Sink, int, Path]]:
    """(sink, port, CA file the client must trust)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    sink = Sink(password)
    controller = Controller(sink, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=sink.authenticate, auth_require_tls=True, server_hostname="localhost")
    controller.start()
    try:
        yield sink, port, cert
    finally:
        controller.stop()
