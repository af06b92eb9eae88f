"""A read-only status port on a serial line, for VMs and labs.

Enabled only when the systemd credential `cluster.status-port` names a device
(e.g. /dev/ttyS1); the unit exits at once otherwise. One request per line, one
JSON line back, and nothing that changes the node:
  status                   -> {"time": t, "status": <clusterctl status --json>}
  journal <unit> <epoch>   -> {"time": t, "lines": [[epoch, message], ...]}
  grep <word> <epoch>      -> the same, for every journal line since then holding <word>
The grep form exists because journald files a short-lived process's syslog
line under no unit when the process has exited before journald looks at it:
heartbeat's ResourceManager logs through such processes, so `-u heartbeat`
misses some of its "Running ... start" lines.
"""

from __future__ import annotations

import json
import logging
import os
import re
import termios
import time
import tty
from typing import Any

from builder.node import status
from builder.node.config import Cluster
from builder.node.context import Ctx
from builder.node.identity import read_credential

log = logging.getLogger("clusterctl")
CREDENTIAL = "cluster.status-port"
_UNIT = re.compile(r"^[A-Za-z0-9@_.:-]+$")


def answer(ctx: Ctx, cluster: Cluster, line: str) -> dict[str, Any]:
    words = line.split()
    now = time.time()
    if words == ["status"]:
        return {"time": now, "status": status.collect(ctx, cluster)}
    if len(words) == 3 and words[0] in ("journal", "grep") and _UNIT.match(words[1]):
        since = float(words[2])
        match = ["-u", words[1]] if words[0] == "journal" else ["--grep", re.escape(words[1])]
        r = ctx.run(["journalctl", *match, "--since", f"@{since:.3f}", "-o", "short-unix",
                     "--no-pager", "-q"], check=False, timeout=60)
        lines = []
        for text in r.stdout.splitlines():
            stamp, _, message = text.partition(" ")
            try:
                lines.append([float(stamp), message])
            except ValueError:
                continue
        return {"time": now, "lines": lines}
    return {"time": now, "error": f"unknown request {line.strip()[:40]!r}: use status | journal UNIT EPOCH"}


def serve(ctx: Ctx, cluster: Cluster) -> int:
    found = read_credential(ctx, CREDENTIAL)
    if not found:
        log.info("no %s credential: status port disabled", CREDENTIAL)
        return 0
    device = found[0]
    fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[4] = attrs[5] = termios.B115200
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    log.info("status port on %s", device)
    buf = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            time.sleep(0.2)
            continue
        buf += chunk
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                reply = answer(ctx, cluster, line)
            except Exception as e:  # the port must outlive any one bad request
                reply = {"time": time.time(), "error": f"{type(e).__name__}: {e}"}
            os.write(fd, json.dumps(reply).encode() + b"\n")
