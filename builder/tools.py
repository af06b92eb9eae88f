"""Every host tool builder and its tests call, in one table: `builder doctor` prints it,
each stage checks its part with `require(stage)`, and scripts/setup.sh installs its
Debian packages (`python3 -m builder.tools apt-packages`).

Standard library only: setup.sh runs this module with Debian's python3 before the venv
(or pydantic, or anything else) exists.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from builder.errors import BuilderError  # standard library only, like this module

SETUP = "run `bash scripts/setup.sh` as root"
SYSTEM_PYTHON = "/usr/bin/python3"

STAGES = {  # stage -> what it is, as error messages name it
    "setup": "scripts/setup.sh (the venv)",
    "package": "the .deb and the .rpm (builder package)",
    "repo": "apt and yum repositories (builder repo)",
    "image": "node images (builder image; mkosi is checked on its own)",
    "qcow2": "qcow2 images (builder image --format qcow2)",
    "iso": "the installer ISO (builder image --format iso)",
    "vm": "booting a QEMU guest (the lab's nodes, the installer)",
    "lab": "the QEMU lab (builder lab)",
    "stdeb": "builder's own .deb (scripts/build-stdeb.sh)",
    "tests": "the tests with the real tools",
}


@dataclass(frozen=True)
class Tool:
    name: str  # an executable on PATH, an absolute path, or a module of Debian's python3 (kind)
    package: str  # the Debian package setup.sh installs for it
    stages: tuple[str, ...]
    why: str
    # "exe": found on PATH; "file": the path exists; "module": Debian's python3 imports it;
    # "setup": installed by setup.sh, nothing single to check.
    kind: Literal["exe", "file", "module", "setup"] = "exe"

    def present(self) -> bool:
        return self.kind == "setup" or bool(self.where())

    def where(self) -> str:
        """Where it was found: "" when missing, or when there is nothing to check (kind "setup")."""
        if self.kind == "exe":
            return shutil.which(self.name) or ""
        if self.kind == "file":
            return self.name if Path(self.name).exists() else ""
        if self.kind == "module":
            return f"{SYSTEM_PYTHON}: import {self.name}" if _system_python_has(self.name) else ""
        return ""


def _system_python_has(module: str) -> bool:
    # The lab and setup run Debian's python3, not the venv's: ask that one.
    if not Path(SYSTEM_PYTHON).exists():
        return False
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)"
    return subprocess.run([SYSTEM_PYTHON, "-c", code, module], capture_output=True).returncode == 0


TOOLS = (
    # setup: python and the venv
    Tool(SYSTEM_PYTHON, "python3", ("setup", "image", "lab"), "the venv's python; mkosi and the lab's clients run on it",
         kind="file"),
    Tool("ensurepip", "python3-venv", ("setup",), "creates the venv", kind="module"),
    Tool("/usr/bin/pip3", "python3-pip", ("setup",), "pip for Debian's python3", kind="file"),
    Tool("git", "git", ("setup",), "the builder checkout"),
    # package and repo
    Tool("dpkg-deb", "dpkg", ("package", "tests"), "writes and reads the .deb"),
    Tool("rpmbuild", "rpm", ("package",), "builds the .rpm"),
    Tool("apt-ftparchive", "apt-utils", ("repo",), "apt repository indexes"),
    Tool("createrepo_c", "createrepo-c", ("repo",), "yum repository metadata"),
    # image
    Tool("systemd-nspawn", "systemd-container", ("image",), "mkosi's shell and boot verbs (debugging an image)",
         kind="setup"),
    Tool("qemu-img", "qemu-utils", ("qcow2", "lab", "tests"), "qcow2 images; the lab's node disks"),
    Tool("xorriso", "xorriso", ("iso", "tests"), "writes the ISO"),
    Tool("zstd", "zstd", ("iso", "tests"), "compresses the node image inside the ISO"),
    Tool("mkfs.vfat", "dosfstools", ("iso",), "the ISO's EFI system partition (FAT)"),
    Tool("mmd", "mtools", ("iso",), "folders in the FAT image, without mounting"),
    Tool("mcopy", "mtools", ("iso",), "files into the FAT image, without mounting"),
    Tool("mdir", "mtools", ("tests",), "reads the ISO's FAT image back"),
    # vm and lab
    Tool("qemu-system-x86_64", "qemu-system-x86", ("vm", "lab", "tests"), "boots the nodes and the installer"),
    Tool("/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf", ("vm", "lab", "tests"), "UEFI firmware for the guests",
         kind="file"),
    Tool("ip", "iproute2", ("lab", "tests"), "the lab's network namespace, bridges and taps"),
    Tool("/usr/sbin/dnsmasq", "dnsmasq-base", ("lab",), "the lab site's DNS (time server names)", kind="file"),
    Tool("curl", "curl", ("lab",), "HTTP through the VIP"),
    Tool("mariadb", "mariadb-client", ("lab",), "SQL through the VIP"),
    Tool("aiosmtpd", "python3-aiosmtpd", ("lab",), "the lab's mail sink (Debian's python3)", kind="module"),
    # builder's own .deb
    Tool("py2dsc", "python3-stdeb", ("stdeb",), "stdeb: the Debian source package of builder"),
    Tool("python3-all", "python3-all", ("stdeb",), "stdeb builds for every python3 Debian has", kind="setup"),
    Tool("dh_python3", "dh-python", ("stdeb",), "installs builder's python files in the .deb"),
    Tool("dh", "debhelper", ("stdeb",), "debian/rules of the stdeb package"),
    Tool("dpkg-buildpackage", "dpkg-dev", ("stdeb",), "builds the stdeb package"),
    Tool("make", "make", ("stdeb",), "runs debian/rules"),
    Tool("fakeroot", "fakeroot", ("stdeb",), "dpkg-buildpackage without root"),
    # the tests' real tools
    Tool("drbdadm", "drbd-utils", ("tests",), "parses the rendered DRBD config; real metadata in the node tests"),
    Tool("/usr/libexec/heartbeat/heartbeat", "heartbeat", ("tests",), "the native failover test runs the daemon",
         kind="file"),
    Tool("shellcheck", "shellcheck", ("tests",), "checks rendered, maintainer and project scripts"),
    Tool("systemd-analyze", "systemd", ("tests",), "verifies the rendered units"),
    Tool("unshare", "util-linux", ("tests",), "private namespaces for the real-tool tests"),
    Tool("mkfs.ext4", "e2fsprogs", ("tests",), "file systems in the node disk tests"),
    Tool("debugfs", "e2fsprogs", ("tests",), "reads files out of a built image"),
    Tool("sfdisk", "fdisk", ("tests",), "partition tables of disks, images and the ISO"),
    Tool("lintian", "lintian", ("tests",), "checks the .deb"),
    Tool("rpm", "rpm", ("tests",), "installs the .rpm into a Debian root"),
    Tool("rpmspec", "rpm", ("tests",), "parses the rendered spec"),
    Tool("rpmlint", "rpmlint", ("tests",), "checks the .rpm"),
    Tool("mmdebstrap", "mmdebstrap", ("tests",), "Debian roots for the acceptance tests"),
    Tool("gpg", "gnupg", ("tests",), "mmdebstrap's keyrings"),
    Tool("msmtp", "msmtp", ("tests",), "the nodes' mail client, against a real SMTP server"),
    Tool("openssl", "openssl", ("tests",), "certificates for the test SMTP server"),
)


def missing(stage: str) -> list[Tool]:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    return [t for t in TOOLS if stage in t.stages and not t.present()]


def require(stage: str) -> None:
    """Raise BuilderError (exit 1) naming what `stage` lacks and how to get it."""
    gone = missing(stage)
    if gone:
        raise BuilderError(f"missing host tools for {STAGES[stage]}: {', '.join(t.name for t in gone)}",
                           hint=fix(gone))


def fix(gone: Iterable[Tool]) -> str:
    return f"{SETUP}, or `apt-get install {' '.join(sorted({t.package for t in gone}))}`"


def apt_packages() -> list[str]:
    return sorted({t.package for t in TOOLS})


if __name__ == "__main__":
    if sys.argv[1:] != ["apt-packages"]:
        sys.exit("usage: python3 -m builder.tools apt-packages")
    print("\n".join(apt_packages()))
