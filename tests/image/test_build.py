"""Build a real node image with mkosi and look inside it without booting (slow)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from builder.errors import BuilderError
from builder.image import build_image
from tests.image.conftest import Built
from tests.image.helpers import TEST_KEY, TEST_PACKAGE, make_profile, make_test_deb
from tests.image.inspect_image import ESP, ROOT_X86_64, Entry, RootFs, partitions

pytestmark = pytest.mark.slow


def _packages(manifest: Path) -> dict[str, str]:
    data = json.loads(manifest.read_text())
    return {p["name"]: p["version"] for p in data["packages"]}


def test_outputs_exist(built_image: Built) -> None:
    b = built_image
    assert b.raw.stat().st_size > 300 << 20
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(b.qcow2)], check=True, capture_output=True, text=True
        ).stdout
    )
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == b.raw.stat().st_size
    assert not [p.name for p in b.out.iterdir() if p.name.startswith(".")], "temporary files left in the output"
    assert not list((b.cache / "workspace").glob("mkosi-*")), "mkosi workspace left behind"


def test_manifest_has_the_packages(built_image: Built) -> None:
    pkgs = _packages(built_image.manifest)
    for name in (TEST_PACKAGE, "heartbeat", "drbd-utils", "linux-image-amd64", "chrony", "lighttpd", "openssh-server"):
        assert name in pkgs, f"{name} not in the image"
    assert pkgs[TEST_PACKAGE] == "1.0"
    if built_image.release == "trixie":
        assert "systemd-repart" in pkgs


def test_partitions_esp_and_root_only(built_image: Built) -> None:
    sector, parts = partitions(built_image.raw)
    assert sector == 512
    assert [p.type for p in parts] == [ESP, ROOT_X86_64]


@pytest.fixture(scope="module")
def root(built_image: Built) -> RootFs:
    return RootFs(built_image.raw)


def test_kernel_and_repart_definition(root: RootFs) -> None:
    assert root.listdir("/usr/lib/modules"), "no kernel modules"
    conf = root.read("/usr/lib/repart.d/50-drbd-r0.conf").decode()
    assert "Label=drbd-r0" in conf and "Format=" not in conf


def test_units_preset_as_intended(root: RootFs) -> None:
    wants = {e.path.rsplit("/", 1)[1] for e in root.listdir("/etc/systemd/system/multi-user.target.wants")}
    for unit in ("systemd-networkd.service", "chrony.service", "ssh.service",
                 "builder-ssh-hostkeys.service", f"{TEST_PACKAGE}.service", f"{TEST_PACKAGE}-up.service"):
        assert unit in wants, f"{unit} not enabled"
    for unit in ("heartbeat.service", "logd.service", "drbd.service", "lighttpd.service",
                 "chrony-wait.service", "chronyd-restricted.service"):
        assert unit not in wants, f"{unit} enabled at boot"
    everywhere = {e.path for e in root.walk("/etc/systemd/system")}
    wait_online = [p for p in everywhere if p.endswith("/systemd-networkd-wait-online.service")]
    assert wait_online == ["/etc/systemd/system/systemd-networkd-wait-online.service"]
    assert root.readlink(wait_online[0]) == "/dev/null"  # masked
    assert not [p for p in everywhere if p.endswith(("/heartbeat.service", "/logd.service", "/drbd.service"))]


def test_identity_is_not_baked_in(root: RootFs) -> None:
    assert root.read("/etc/machine-id").strip() in (b"", b"uninitialized")
    assert not [e for e in root.listdir("/etc/ssh") if e.path.rsplit("/", 1)[1].startswith("ssh_host_")]
    assert root.stat("/var/lib/heartbeat/hb_uuid") is None


def test_apt_sources_in_image(root: RootFs, built_image: Built) -> None:
    rel = built_image.release
    text = root.read(f"/etc/apt/sources.list.d/{rel}.sources").decode()
    assert f"Suites: {rel} {rel}-updates" in text and f"{rel}-security" in text
    assert "debian-debug" not in text


def test_root_locked_and_key_installed(root: RootFs) -> None:
    shadow = root.stat("/etc/shadow")
    assert shadow and shadow.mode & 0o007 == 0
    # /etc/shadow is only readable by root and group shadow, so read via debugfs as root.
    entry = next(line for line in root.read("/etc/shadow").decode().splitlines() if line.startswith("root:"))
    field = entry.split(":")[1]
    assert field in ("*", "!", "!*") or field.startswith("!"), "root has a usable password"
    ssh_dir, keys = root.stat("/root/.ssh"), root.stat("/root/.ssh/authorized_keys")
    assert root.stat("/root") is not None
    home = root.stat("/root")
    assert home and home.mode & 0o077 == 0
    assert ssh_dir and ssh_dir.mode & 0o077 == 0 and ssh_dir.uid == 0
    assert keys and keys.mode & 0o077 == 0 and keys.uid == 0
    assert TEST_KEY in root.read("/root/.ssh/authorized_keys").decode()


def _looks_secret(path: str) -> bool:
    name = path.rsplit("/", 1)[1]
    return (
        name in ("shadow", "gshadow", "shadow-", "gshadow-", "authkeys", "authorized_keys")
        or name.endswith((".key", "_key"))
        or "secret" in name
        or (path.startswith("/usr/lib/credstore/") and "password" in name)
        or path.startswith(("/etc/ssl/private/", "/root/"))
    )


def _others_can_read(e: Entry, dirs: dict[str, Entry]) -> bool:
    """o+r on the file and o+x on every folder above it."""
    if not e.mode & 0o004:
        return False
    parent = e.path.rsplit("/", 1)[0]
    while parent:
        d = dirs.get(parent)
        if d is not None and not d.mode & 0o001:
            return False
        parent = parent.rsplit("/", 1)[0]
    return True


def test_no_secret_readable_by_others(root: RootFs) -> None:
    secret = root.stat(f"/etc/{TEST_PACKAGE}/secret.key")
    assert secret and secret.mode & 0o077 == 0
    leaks = []
    for top in ("/etc", "/root", "/usr/lib/credstore", "/var/lib"):
        top_entry = root.stat(top)
        if top_entry is None:
            continue
        entries = root.walk(top)
        dirs = {e.path: e for e in [top_entry, *entries] if e.is_dir}
        for e in entries:
            if e.is_file and _looks_secret(e.path) and _others_can_read(e, dirs):
                leaks.append(f"{e.mode & 0o7777:04o} {e.path}")
    assert not leaks, "world-readable secret-looking files:\n" + "\n".join(leaks)


def test_rebuild_with_a_new_package_reuses_the_base(built_image: Built, tmp_path: Path) -> None:
    """A profile-only change (new cluster .deb): the cached base image is reused."""
    deb = make_test_deb(tmp_path, "1.1")
    out = tmp_path / "out"
    build_image(make_profile(built_image.release), [deb], out, "raw", built_image.cache)
    log = (built_image.cache / "logs" / "imgtest.log").read_text()
    assert "Copying cached trees" in log, "the base image was not reused"
    assert _packages(out / "imgtest.manifest.json")[TEST_PACKAGE] == "1.1"
    assert sorted(p.name for p in out.iterdir()) == ["imgtest.manifest.json", "imgtest.raw"]


def test_failed_build_leaves_nothing(built_image: Built, tmp_path: Path) -> None:
    """A broken package fails the build: no output under the requested name, no workspace."""
    pkg = tmp_path / "pkg-9.9"
    deb = make_test_deb(tmp_path, "9.9")
    postinst = pkg / "DEBIAN/postinst"
    postinst.write_text("#!/bin/sh\necho builder-test-broken-postinst >&2\nexit 1\n")
    os.chmod(postinst, 0o755)
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(pkg), str(deb)], check=True, capture_output=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "imgtest.qcow2").write_text("previous good image\n")
    with pytest.raises(BuilderError) as err:
        build_image(make_profile(built_image.release), [deb], out, "all", built_image.cache)
    assert "command failed" in err.value.message and "mkosi" in err.value.message
    assert "builder-test-broken-postinst" in err.value.message or "postinst" in err.value.message
    assert sorted(p.name for p in out.iterdir()) == ["imgtest.qcow2"]
    assert (out / "imgtest.qcow2").read_text() == "previous good image\n"
    assert not list((built_image.cache / "workspace").glob("mkosi-*"))
