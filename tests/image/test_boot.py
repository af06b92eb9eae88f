"""Boot the built image under QEMU (TCG + OVMF, no network) on a disk larger than
the image, and read from the serial console that it reached multi-user and that
systemd-repart made the DRBD partition at first boot (slow: minutes under TCG).
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from builder.image.stream import strip_ansi
from tests.image.conftest import Built
from tests.image.helpers import MARK

pytestmark = pytest.mark.slow

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
BOOT_TIMEOUT = float(os.environ.get("BUILDER_TEST_BOOT_TIMEOUT", "1200"))
MULTI_USER = re.compile(rf"{MARK} multi-user\.target reached")


def _die_with_parent() -> None:
    """QEMU gets SIGKILL if the test process dies without cleaning up."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def boot_until(
    image: Path, work: Path, wanted: dict[str, re.Pattern[str]], timeout: float
) -> tuple[str, dict[str, float]]:
    """Boot image (through a qcow2 overlay 2 GiB larger) until every pattern is on the console.

    Returns the console text and, for each pattern, the seconds until it appeared.
    """
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu or not OVMF_CODE.exists():
        pytest.fail("qemu-system-x86_64 and OVMF are needed (Debian packages qemu-system-x86, ovmf)")
    overlay = work / "disk.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image), "-F", image.suffix.lstrip("."),
         str(overlay)], check=True,
    )  # fmt: skip
    info = subprocess.run(["qemu-img", "info", "--output=json", str(overlay)], check=True,
                          capture_output=True, text=True).stdout  # fmt: skip
    size = int(re.search(r'"virtual-size": (\d+)', info).group(1))  # type: ignore[union-attr]
    subprocess.run(["qemu-img", "resize", "-q", str(overlay), str(size + (2 << 30))], check=True)
    vars_fd = work / "OVMF_VARS.fd"
    shutil.copyfile(OVMF_VARS, vars_fd)
    console = work / "console.log"
    argv = [
        qemu, "-machine", "q35,accel=tcg", "-cpu", "max", "-smp", "2", "-m", "1024",
        "-display", "none", "-no-reboot", "-nic", "none",
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,unit=1,file={vars_fd}",
        "-drive", f"if=virtio,format=qcow2,file={overlay}",
        "-serial", f"file:{console}",
        "-monitor", "none",
    ]  # fmt: skip
    start = time.monotonic()
    seen: dict[str, float] = {}
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_die_with_parent,
    )
    try:
        while time.monotonic() - start < timeout:
            text = strip_ansi(console.read_text(errors="replace")) if console.exists() else ""
            for name, pattern in wanted.items():
                if name not in seen and pattern.search(text):
                    seen[name] = time.monotonic() - start
            if len(seen) == len(wanted):
                return text, seen
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                pytest.fail(f"QEMU exited with {proc.returncode}: {err}\nconsole tail:\n{text[-3000:]}")
            time.sleep(3)
        text = console.read_text(errors="replace") if console.exists() else ""
        missing = sorted(set(wanted) - set(seen))
        pytest.fail(f"not on the console after {timeout:.0f}s: {missing}; tail:\n{text[-3000:]}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_boots_to_multi_user_and_makes_the_drbd_partition(built_image: Built, tmp_path: Path) -> None:
    wanted = {"check unit": re.compile(rf"{MARK} done"), "multi-user": MULTI_USER}
    text, seconds = boot_until(built_image.qcow2, tmp_path, wanted, BOOT_TIMEOUT)
    print(f"\nTCG boot: {seconds}; console: {tmp_path / 'console.log'}")
    assert f"{MARK} drbd-partition=present" in text, text[-3000:]
    assert re.search(rf"{MARK} .*drbd-r0", text), "no drbd-r0 in lsblk"
    m = re.search(rf"{MARK} machine-id=(\S*)", text)
    assert m and re.fullmatch(r"[0-9a-f]{32}", m.group(1)), "machine-id was not generated at first boot"
    assert "Press any key" not in text and "Please enter" not in text, "firstboot waited for input"
