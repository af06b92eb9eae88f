"""One lab node: a QEMU process inside the lab's namespace.

The node boots from a copy-on-write overlay of the shared image (larger than the
image: first boot makes the DRBD partition in the free space). Its identity is
given the way a user would on a VM: an SMBIOS type 11 systemd credential.
Consoles go to one file per boot; ttyS1 is the node's read-only status port.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import BuilderError
from builder.lab.net import LabNetwork
from builder.run import run

log = logging.getLogger("builder")

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")


def _alive(pid: int) -> bool:
    """Running, and not a zombie left for a parent that does not reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# -accel and -cpu per lab --accel choice. "tcg" is tuned for this host: a
# 512 MiB translation cache cut boot to the agent from 126 s to 82 s and the
# lab's ready time from 470 s to ~360 s (docs/benchmarks.md); thread=multi is
# QEMU 7.2's default for x86 guests, stated to keep it. "tcg-plain" is QEMU's
# defaults, to measure against. "kvm" only where guests boot with it (not here).
ACCEL = {
    "tcg": ("tcg,thread=multi,tb-size=512", "max"),
    "tcg-plain": ("tcg", "max"),
    "kvm": ("kvm", "host"),
}


class VmStartError(BuilderError):
    """QEMU exited or never opened its sockets: the host's trouble, not the guest's."""


@dataclass
class VmSpec:
    name: str
    image: Path
    workdir: Path
    nics: list[tuple[str, str]]  # (tap, mac)
    credentials: dict[str, str] = field(default_factory=dict)
    memory_mb: int = 1536
    cpus: int = 2
    disk_size: str = "8G"
    accel: str = "tcg"


class Vm:
    def __init__(self, spec: VmSpec, net: LabNetwork) -> None:
        self.spec = spec
        self.net = net
        self.proc: subprocess.Popen[bytes] | None = None
        self.boots = 0
        self.hiccups: list[str] = []
        spec.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def disk(self) -> Path:
        return self.spec.workdir / "disk.qcow2"

    @property
    def status_socket(self) -> Path:
        return self.spec.workdir / "status.sock"

    @property
    def console(self) -> Path:
        return self.spec.workdir / f"console-{self.boots}.log"

    def prepare(self) -> None:
        """The node's own disk (an overlay over the shared image) and UEFI variables."""
        self.spec.workdir.mkdir(parents=True, exist_ok=True)
        if not self.disk.exists():
            run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", self.spec.image.absolute(),
                 self.disk, self.spec.disk_size])
        vars_fd = self.spec.workdir / "OVMF_VARS.fd"
        if not vars_fd.exists():
            shutil.copyfile(OVMF_VARS, vars_fd)

    def argv(self) -> list[str]:
        s = self.spec
        accel, cpu = ACCEL[s.accel]
        argv = [
            "qemu-system-x86_64", "-name", s.name, "-machine", "q35", "-accel", accel,
            "-cpu", cpu, "-smp", str(s.cpus), "-m", str(s.memory_mb),
            "-nodefaults", "-display", "none", "-no-user-config",
            "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,file={s.workdir / 'OVMF_VARS.fd'}",
            "-drive", f"if=virtio,format=qcow2,file={self.disk},cache=unsafe,discard=unmap",
            "-chardev", f"file,id=console,path={self.console}",
            "-serial", "chardev:console",
            "-chardev", f"socket,id=status,path={self.status_socket},server=on,wait=off",
            "-serial", "chardev:status",
            "-qmp", f"unix:{s.workdir / 'qmp.sock'},server=on,wait=off",
            "-device", "virtio-rng-pci",
            "-pidfile", str(s.workdir / "qemu.pid"),
        ]
        for i, (tap, mac) in enumerate(s.nics):
            argv += ["-netdev", f"tap,id=n{i},ifname={tap},script=no,downscript=no",
                     "-device", f"virtio-net-pci,netdev=n{i},mac={mac}"]
        for key, value in s.credentials.items():
            argv += ["-smbios", f"type=11,value=io.systemd.credential:{key}={value}"]
        return argv

    def start(self) -> None:
        """Boot; a QEMU that fails to start (an infrastructure hiccup, not a failed
        check) is retried once and recorded in self.hiccups for the report."""
        try:
            self._start_once()
        except VmStartError as e:
            self.hiccups.append(str(e).splitlines()[0])
            log.warning("%s: QEMU did not start, retrying once", self.spec.name)
            self.stop()
            self._start_once()

    def _start_once(self) -> None:
        self.prepare()
        self.boots += 1
        self.status_socket.unlink(missing_ok=True)
        with open(self.spec.workdir / f"qemu-{self.boots}.log", "wb") as log:  # QEMU keeps its own copy
            self.proc = self.net.popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self.status_socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.spec.workdir / f"qemu-{self.boots}.log").read_text(errors="replace")[-2000:]
                raise VmStartError(f"QEMU for {self.spec.name} did not start (boot {self.boots}):\n{tail}")
            time.sleep(0.2)

    def pid(self) -> int | None:
        try:
            pid = int((self.spec.workdir / "qemu.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def running(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return self.pid() is not None  # started by an earlier `builder lab up`

    def kill(self) -> float:
        """SIGKILL: a power cut. Returns the monotonic time of the kill."""
        pid = self.proc.pid if self.proc is not None else self.pid()
        if pid is None:
            raise BuilderError(f"{self.spec.name} is not running")
        t = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()  # reap: kill(pid, 0) succeeds on a zombie
        else:  # started by an earlier `builder lab up`: not our child, nobody may reap it
            while _alive(pid):
                time.sleep(0.05)
        return t

    def stop(self) -> None:
        if self.running():
            self.kill()

    def console_text(self) -> str:
        try:
            return self.console.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def ask(self, command: str, timeout: float = 30) -> dict:
        """One request on the node's status port; the node answers one JSON line."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.status_socket))
            sock.sendall(command.encode() + b"\n")
            buf = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                for line in buf.split(b"\n"):
                    line = line.strip()
                    if line.startswith(b"{") and line.endswith(b"}"):
                        try:
                            return json.loads(line)
                        except ValueError:
                            continue
        raise BuilderError(f"{self.spec.name}: no answer on the status port")
