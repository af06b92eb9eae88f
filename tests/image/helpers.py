"""Shared by the image tests: a small profile and a tiny test .deb."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from builder.profile.model import Profile

TEST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBuilderImageTestKeyNotARealKey0000000000 test@builder"
# A placeholder mirror for rendering tests: never contacted, and no real host.
FAKE_MIRROR = "http://debian-mirror.invalid/debian"
TEST_PACKAGE = "builder-imagetest"
MARK = "BUILDER-IMAGETEST"


def profile_data(release: str = "trixie", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "cluster": {"name": "imgtest", "release": release},
        "nodes": [
            {
                "name": "alpha",
                "public": {"address": "192.0.2.11/24"},
                "replication": {"address": "198.51.100.1/24"},
            },
            {
                "name": "beta",
                "public": {"address": "192.0.2.12/24"},
                "replication": {"address": "198.51.100.2/24"},
            },
        ],
        "vip": {"address": "192.0.2.10/24"},
        "services": [
            {"name": "web", "unit": "lighttpd.service", "packages": {"deb": ["lighttpd"]}},
        ],
        "ssh_authorized_keys": [TEST_KEY],
    }
    data.update(overrides)
    return data


def make_profile(release: str = "trixie", **overrides: Any) -> Profile:
    return Profile.model_validate(profile_data(release, **overrides))


CHECK_UNIT = f"""\
[Unit]
Description=builder image test: show the disk layout on the console
After=systemd-repart.service local-fs.target systemd-udevd.service

[Service]
Type=oneshot
StandardOutput=journal+console
ExecStart=/bin/sh -c '\\
  udevadm settle --timeout=60 || true; \\
  echo "{MARK} lsblk:"; lsblk -o NAME,SIZE,TYPE,PARTLABEL | sed "s/^/{MARK} /"; \\
  if [ -e /dev/disk/by-partlabel/drbd-r0 ]; then s=present; else s=missing; fi; \\
  echo "{MARK} drbd-partition=$$s"; \\
  echo "{MARK} machine-id=$$(cat /etc/machine-id)"; \\
  echo "{MARK} done"'

[Install]
WantedBy=multi-user.target
"""

# Runs once multi-user.target is active: the console line proves the node got there.
UP_UNIT = f"""\
[Unit]
Description=builder image test: say on the console that multi-user.target is reached
After=multi-user.target

[Service]
Type=oneshot
StandardOutput=journal+console
ExecStart=/bin/echo "{MARK} multi-user.target reached"

[Install]
WantedBy=multi-user.target
"""

REPART_DRBD = """\
[Partition]
Type=linux-generic
Label=drbd-r0
SizeMinBytes=256M
SizeMaxBytes=256M
"""


def make_test_deb(dest_dir: Path, version: str = "1.0", extra: str = "") -> Path:
    """A tiny arch-all .deb: the DRBD repart definition, a console check unit, a secret."""
    root = dest_dir / f"pkg-{version}"
    files = {
        "usr/lib/repart.d/50-drbd-r0.conf": (REPART_DRBD, 0o644),
        f"usr/lib/systemd/system/{TEST_PACKAGE}.service": (CHECK_UNIT, 0o644),
        f"usr/lib/systemd/system/{TEST_PACKAGE}-up.service": (UP_UNIT, 0o644),
        f"usr/lib/systemd/system-preset/50-{TEST_PACKAGE}.preset": (
            f"enable {TEST_PACKAGE}.service\nenable {TEST_PACKAGE}-up.service\n",
            0o644,
        ),
        f"etc/{TEST_PACKAGE}/secret.key": ("not-really-secret-but-0600\n", 0o600),
        f"usr/share/{TEST_PACKAGE}/version": (f"{version}{extra}\n", 0o644),
        "DEBIAN/control": (
            textwrap.dedent(
                f"""\
                Package: {TEST_PACKAGE}
                Version: {version}
                Architecture: all
                Section: admin
                Priority: optional
                Maintainer: builder tests <tests@builder.invalid>
                Description: builder image test package
                 Ships a DRBD repart definition and a unit that reports the disk layout.
                """
            ),
            0o644,
        ),
        "DEBIAN/conffiles": (f"/etc/{TEST_PACKAGE}/secret.key\n", 0o644),
    }
    for rel, (text, mode) in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        os.chmod(p, mode)
    for d in [root, *root.rglob("*")]:
        if d.is_dir():
            os.chmod(d, 0o755)
    out = dest_dir / f"{TEST_PACKAGE}_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    return out
