"""Real clients on the lab's public LAN: curl, a SIP OPTIONS, the mariadb client.

Each runs inside the lab's namespace (the client end), talks only to the VIP,
and returns plain facts; deciding what is a failure is the scenario's job.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from builder.lab.net import LabNetwork

SIP_OPTIONS = """\
import socket, sys, uuid
vip, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
me, lport = s.getsockname()
s.connect((vip, port))
me = s.getsockname()[0]
tag, call = uuid.uuid4().hex[:8], uuid.uuid4().hex
msg = (f"OPTIONS sip:{vip}:{port} SIP/2.0\\r\\n"
       f"Via: SIP/2.0/UDP {me}:{lport};branch=z9hG4bK{tag};rport\\r\\n"
       f"Max-Forwards: 70\\r\\nTo: <sip:{vip}>\\r\\nFrom: <sip:lab@{me}>;tag={tag}\\r\\n"
       f"Call-ID: {call}@{me}\\r\\nCSeq: 1 OPTIONS\\r\\nContact: <sip:lab@{me}:{lport}>\\r\\n"
       f"Accept: application/sdp\\r\\nContent-Length: 0\\r\\n\\r\\n")
s.settimeout(2)
for _ in range(3):
    s.send(msg.encode())
    try:
        print(s.recv(65535).decode(errors="replace").split("\\r\\n")[0])
        break
    except (socket.timeout, ConnectionRefusedError):
        continue
"""


def http_status(net: LabNetwork, vip: str) -> int:
    proc = net.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", f"http://{vip}/"],
                   check=False, timeout=15)
    return int(proc.stdout.strip() or 0)


def sip_options(net: LabNetwork, vip: str, port: int = 5060) -> str:
    """The status line of the answer to a SIP OPTIONS, e.g. 'SIP/2.0 200 Keepalive', or ''."""
    proc = net.run(["/usr/bin/python3", "-c", SIP_OPTIONS, vip, str(port)], check=False, timeout=20)
    return proc.stdout.strip()


def _mariadb(vip: str, password: str) -> list[str]:
    # The password goes in a 0600 option file, never on a command line (argv is
    # logged, shown by ps, and quoted in error messages).
    conf = Path(tempfile.gettempdir()) / f"builder-lab-{os.getuid()}-{hashlib.sha256(password.encode()).hexdigest()[:12]}.cnf"
    if not conf.exists():
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"[client]\nuser=pbx\npassword={password}\n")
    return ["mariadb", f"--defaults-extra-file={conf}", "-h", vip, "--connect-timeout=5", "-N", "-B", "pbx"]


def sql(net: LabNetwork, vip: str, password: str, query: str) -> str:
    proc = net.run([*_mariadb(vip, password), "-e", query], check=False, timeout=30)
    return proc.stdout.strip() if proc.returncode == 0 else ""


ACK_TIMEOUT_S = 5


@dataclass
class Inserter:
    """Inserts numbered rows through the VIP, one client process per connection,
    and records every row the server acknowledged (autocommit: acked = committed)."""

    net: LabNetwork
    vip: str
    password: str
    acked: list[int] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.net.run([*_mariadb(self.vip, self.password), "-e",
                      "CREATE TABLE IF NOT EXISTS acked_rows (n INT PRIMARY KEY, at TIMESTAMP(6) DEFAULT NOW(6))"])
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        n = 0
        while not self._stop.is_set():
            # One long-lived client: each INSERT is followed by an echo of its
            # number, printed only after the server acknowledged the INSERT.
            proc = self.net.popen([*_mariadb(self.vip, self.password), "--unbuffered"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert proc.stdin and proc.stdout
            try:
                while not self._stop.is_set():
                    n += 1
                    proc.stdin.write(f"INSERT INTO acked_rows (n) VALUES ({n}); SELECT {n};\n".encode())
                    proc.stdin.flush()
                    # A dead server sends no RST: without a deadline the client
                    # would wait on its TCP connection forever, and never reconnect.
                    if not select.select([proc.stdout], [], [], ACK_TIMEOUT_S)[0]:
                        break
                    line = proc.stdout.readline()
                    if not line:
                        break
                    self.acked.append(int(line))
                    time.sleep(0.05)
            except (BrokenPipeError, ValueError):
                pass
            finally:
                proc.kill()
                proc.wait()
            self.errors += 1
            time.sleep(0.5)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)


MAIL_SINK = """
import asyncio, json, sys, time
from email import message_from_bytes, policy
from aiosmtpd.controller import Controller

class Sink:
    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        part = msg.get_body(("plain",))
        with open(sys.argv[3], "a") as f:
            f.write(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos, "at": time.time(),
                                "subject": str(msg["Subject"]).strip(),
                                "body": part.get_content() if part else ""}) + "\\n")
        return "250 OK"

Controller(Sink(), hostname=sys.argv[1], port=int(sys.argv[2])).start()
asyncio.get_event_loop().run_forever()
"""


@dataclass
class MailSink:
    """A real SMTP server at the profile's relay address on the LAN; it records what it receives."""

    net: LabNetwork
    address: str
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.write_text("")
        self.proc = self.net.popen([sys.executable, "-c", MAIL_SINK, self.address, str(self.port), str(self.log)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def messages(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait()
