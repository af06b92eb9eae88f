"""Install a node's disk from the installer ISO, the way a bare-metal user would.

`install_from_iso` boots QEMU (TCG, OVMF, no network at all) with the ISO as a
CD-ROM and the node's disk, lets the unattended installer write the image, and
returns once the guest reboots (`-no-reboot`: QEMU exits then). `usb=True`
attaches the ISO as a USB stick instead (the hybrid GPT path). The boot menu's
default entry runs; the node identity and the other installer options go in as
SMBIOS type 11 systemd credentials, which the installer reads like the menu
entries' `cluster.*=` options. The console (ttyS0) is written to
<workdir>/install-console.log.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from builder import tools
from builder.errors import BuilderError
from builder.image.stream import strip_ansi

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
PREFIX = "cluster-install: "
DONE = PREFIX + "INSTALLED"
REFUSED = PREFIX + "REFUSED"
FAILED = PREFIX + "ERROR"
TAIL = 1500


class InstallError(BuilderError):
    """The installer failed or did not finish; the message ends with the console tail."""


class InstallRefused(InstallError):
    """The installer refused the disk (it carries data and force was not given)."""


def qemu_argv(
    iso: Path,
    disk: Path,
    workdir: Path,
    credentials: dict[str, str],
    *,
    memory_mb: int = 1536,
    cpus: int = 2,
    usb: bool = False,
) -> list[str]:
    disk_format = "qcow2" if disk.suffix == ".qcow2" else "raw"
    argv = [
        "qemu-system-x86_64", "-name", "installer", "-machine", "q35", "-accel", "tcg,thread=multi",
        "-cpu", "max", "-smp", str(cpus), "-m", str(memory_mb),
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-nic", "none",
        "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,file={workdir / 'OVMF_VARS.fd'}",
        # The medium first: a disk that already boots must not win (refusal test, reinstall).
        *(
            ["-drive", f"if=none,id=medium,format=raw,readonly=on,file={iso.absolute()}",
             "-device", "qemu-xhci", "-device", "usb-storage,drive=medium,removable=on,bootindex=0"]
            if usb else
            ["-drive", f"if=none,id=medium,media=cdrom,format=raw,readonly=on,file={iso.absolute()}",
             "-device", "ide-cd,drive=medium,bus=ide.0,bootindex=0"]
        ),
        "-drive", f"if=none,id=disk0,format={disk_format},file={disk.absolute()},cache=unsafe,discard=unmap",
        "-device", "virtio-blk-pci,drive=disk0,bootindex=1",
        "-chardev", f"file,id=console,path={workdir / 'install-console.log'}",
        "-serial", "chardev:console",
        "-monitor", "none",
        "-device", "virtio-rng-pci",
    ]  # fmt: skip
    for key, value in credentials.items():
        argv += ["-smbios", f"type=11,value=io.systemd.credential:{key}={value}"]
    return argv


def _tail(text: str) -> str:
    """The installer's own lines (what it did and why it stopped), then the console's end."""
    clean = strip_ansi(text).replace("\r", "")
    said = [line[line.index(PREFIX) :] for line in clean.splitlines() if PREFIX in line]
    return "installer said:\n  " + "\n  ".join(said or ["(nothing)"]) + f"\nconsole end:\n{clean[-TAIL:]}"


def install_from_iso(
    iso: Path,
    disk: Path,
    node: str | None,
    workdir: Path,
    timeout: float,
    *,
    force: bool = False,
    install_disk: str | None = None,
    usb: bool = False,
) -> None:
    """Run the ISO's installer onto `disk` (qcow2, or raw for any other suffix).

    node: recorded as the installed node's identity (None: first boot finds it).
    force: cluster.install-force=1 (overwrite a disk that carries data).
    usb: attach the ISO as a USB stick (the `dd` to a stick case) instead of a CD.
    Raises InstallRefused when the installer refuses the disk, InstallError on
    any other failure or timeout; both carry the console tail.
    """
    tools.require("vm")
    for f in (iso, disk):
        if not f.is_file():
            raise BuilderError(f"no such file: {f}")
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(OVMF_VARS, workdir / "OVMF_VARS.fd")
    console = workdir / "install-console.log"
    console.unlink(missing_ok=True)
    credentials: dict[str, str] = {}
    if node:
        credentials["cluster.node"] = node
    if force:
        credentials["cluster.install-force"] = "1"
    if install_disk:
        credentials["cluster.install-disk"] = install_disk
    argv = qemu_argv(iso, disk, workdir, credentials, usb=usb)
    (workdir / "install-qemu.cmdline").write_text(" ".join(argv) + "\n")
    with open(workdir / "install-qemu.log", "wb") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    start = time.monotonic()

    def text() -> str:
        try:
            return console.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    try:
        while True:
            rc = proc.poll()
            out = text()
            if rc is not None:
                if DONE in out and rc == 0:
                    return
                qemu_log = (workdir / "install-qemu.log").read_text(errors="replace")[-1000:]
                raise InstallError(
                    f"installer VM exited (QEMU exit code {rc}) without {DONE!r}; QEMU said: {qemu_log}\n"
                    f"console tail ({console}):\n{_tail(out)}"
                )
            for marker, exc in ((REFUSED, InstallRefused), (FAILED, InstallError)):
                if marker in out:
                    # The installer halts after saying why: give it a moment to finish the lines.
                    time.sleep(5)
                    raise exc(f"the installer stopped on {disk}:\n{_tail(text())}")
            if time.monotonic() - start > timeout:
                raise InstallError(
                    f"the installer did not finish in {timeout:.0f}s; console tail ({console}):\n{_tail(out)}"
                )
            time.sleep(2)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
