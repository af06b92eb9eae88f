"""Service health probes: tcp connect, SIP OPTIONS over UDP, or a command."""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass

from builder.node.config import Probe
from builder.node.context import Ctx

TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str


def tcp(host: str, port: int, timeout: float = TIMEOUT_S) -> ProbeResult:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return ProbeResult(True, f"tcp {host}:{port} accepts connections")
    except OSError as e:
        return ProbeResult(False, f"tcp {host}:{port}: {e.strerror or e}")


def sip_options(host: str, port: int, local_port: int) -> bytes:
    tag = secrets.token_hex(6)
    lines = [
        f"OPTIONS sip:{host}:{port} SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{local_port};branch=z9hG4bK{secrets.token_hex(8)};rport",
        "Max-Forwards: 70",
        f"From: <sip:clusterctl@{host}>;tag={tag}",
        f"To: <sip:{host}:{port}>",
        f"Call-ID: {secrets.token_hex(10)}@{host}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:clusterctl@{host}:{local_port}>",
        "Accept: application/sdp",
        "User-Agent: clusterctl",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def udp_sip(host: str, port: int, timeout: float = TIMEOUT_S) -> ProbeResult:
    """Send a SIP OPTIONS; any SIP response (even 404 or 483) means it is alive."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.bind((host, 0))
            s.sendto(sip_options(host, port, s.getsockname()[1]), (host, port))
            data = s.recv(65535)
        except TimeoutError:
            return ProbeResult(False, f"udp {host}:{port}: no SIP reply in {timeout:.0f} s")
        except OSError as e:
            return ProbeResult(False, f"udp {host}:{port}: {e.strerror or e}")
    first = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
    if first.startswith("SIP/2.0 "):
        return ProbeResult(True, f"sip {host}:{port}: {first}")
    return ProbeResult(False, f"udp {host}:{port}: not a SIP reply: {first[:60]!r}")


def command(ctx: Ctx, argv: tuple[str, ...], timeout: float = 10.0) -> ProbeResult:
    r = ctx.run(list(argv), check=False, timeout=timeout)
    return ProbeResult(r.ok, f"exit {r.returncode}")


def run(ctx: Ctx, probe: Probe, host: str = "127.0.0.1") -> ProbeResult:
    if probe.kind == "tcp" and probe.port is not None:
        return tcp(host, probe.port)
    if probe.kind == "udp_sip" and probe.port is not None:
        return udp_sip(host, probe.port)
    return command(ctx, probe.argv)
