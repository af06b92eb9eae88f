"""The bare-metal installer ISO (`builder image --format iso`).

Fast: the installer's configuration, menu and script (shellcheck), format parsing.
Slow: build the ISO with mkosi + xorriso and look inside; boot it under QEMU
(TCG + OVMF, no network) onto an empty disk, then boot the installed disk; and
check that a disk with a partition table is refused unless forced.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.cli import parser
from builder.errors import BuilderError, InputError
from builder.image import build_image, find_mkosi, parse_formats
from builder.image.iso import (
    AUTO_ENTRY,
    ESP_FILE,
    INSTALLER_RELEASE,
    InstallerSpec,
    installer_spec,
    iso_label,
    loader_files,
    render_files,
    xorriso_argv,
)
from builder.image.progress import Stages
from builder.lab.install import InstallRefused, install_from_iso
from tests.image.conftest import image_cache_dir
from tests.image.helpers import FAKE_MIRROR, MARK, make_profile, make_test_deb
from tests.image.inspect_image import RootFs

SCRIPT = Path(__file__).parents[2] / "images" / "installer" / "install.sh"
INSTALL_TIMEOUT = float(os.environ.get("BUILDER_TEST_INSTALL_TIMEOUT", "1500"))
BOOT_TIMEOUT = float(os.environ.get("BUILDER_TEST_BOOT_TIMEOUT", "1200"))


def _spec() -> InstallerSpec:
    return installer_spec(make_profile(), mirrors=(FAKE_MIRROR, None))


# -- fast --------------------------------------------------------------------


def test_formats() -> None:
    assert parse_formats("iso") == ("iso",)
    assert parse_formats("raw,iso") == ("raw", "iso")
    assert parse_formats("all") == ("raw", "qcow2")  # the ISO is asked for by name
    with pytest.raises(InputError):
        parse_formats("img")
    args = parser().parse_args(["image", "--profile", "pbx-ha", "--format", "iso", "--out", "out"])
    assert args.format == "iso"


def test_label_is_an_iso9660_volume_id() -> None:
    assert iso_label("pbx-ha") == "PBX_HA_INSTALL"
    long = iso_label("a-very-long-cluster-name-that-goes-on")
    assert len(long) <= 32 and re.fullmatch(r"[A-Z0-9_]+", long)


def test_menu_one_entry_per_node_plus_default() -> None:
    spec = _spec()
    files = loader_files(spec)
    conf = files["loader/loader.conf"]
    assert re.search(rf"^default {re.escape(AUTO_ENTRY)}$", conf, re.M)
    assert re.search(r"^timeout [1-9]\d?$", conf, re.M)
    entries = {k: v for k, v in files.items() if k.startswith("loader/entries/")}
    assert len(entries) == 3
    auto = entries[f"loader/entries/{AUTO_ENTRY}"]
    assert "cluster.node=" not in auto
    for node in ("alpha", "beta"):
        (text,) = [v for v in entries.values() if f"cluster.node={node}" in v]
        assert f"as node {node}" in text
    for text in entries.values():
        assert re.search(r"^efi /installer/imgtest-installer\.efi$", text, re.M)
        assert "console=ttyS0,115200" in text
        assert "cluster.install-force" not in text  # never forced by default


def test_installer_mkosi_config() -> None:
    spec = _spec()
    files = render_files(spec, tools_tree=Path("/cache/output/tools"))
    conf = files["mkosi.conf"][0]
    assert "Format=uki" in conf
    assert f"Release={INSTALLER_RELEASE}" in conf
    for pkg in ("systemd", "udev", "util-linux", "zstd", "kmod", "mount", "linux-image-amd64"):
        assert re.search(rf"^\s+{re.escape(pkg)}$", conf, re.M), pkg
    for module in ("isofs", "cdrom", "scsi", "virtio", "ata", "nvme", "usb/(storage"):
        assert module in conf, module
    assert "ToolsTree=/cache/output/tools" in files["mkosi.conf.d/10-tools-tree.conf"][0]
    script, mode = files["extra/usr/lib/cluster-installer/install.sh"]
    assert mode == 0o755 and script == SCRIPT.read_text()
    installer_conf = files["extra/usr/lib/cluster-installer/installer.conf"][0]
    assert "LABEL=IMGTEST_INSTALL" in installer_conf
    assert 'NODES="alpha beta"' in installer_conf
    assert "IMAGE=cluster-image/imgtest.raw.zst" in installer_conf
    unit = files["extra/usr/lib/systemd/system/cluster-installer.service"][0]
    assert "SuccessAction=reboot" in unit and "FailureAction=halt" in unit
    assert "ImportCredential=cluster.*" in unit
    assert "mkosi.conf.d/10-tools-tree.conf" not in render_files(spec, tools_tree=None)


def test_xorriso_makes_el_torito_efi_and_gpt_from_the_esp() -> None:
    argv = xorriso_argv(_spec(), Path("/r"), Path("/o.iso"))
    assert argv[argv.index("-e") + 1] == f"/{ESP_FILE}"
    assert "-no-emul-boot" in argv and "-efi-boot-part" in argv
    assert argv[argv.index("-volid") + 1] == "IMGTEST_INSTALL"


def test_installer_script_is_shellcheck_clean() -> None:
    proc = subprocess.run(["shellcheck", "-s", "sh", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


# -- slow: build -------------------------------------------------------------


@dataclass(frozen=True)
class BuiltIso:
    iso: Path
    seconds: float


@pytest.fixture(scope="module")
def built_iso(tmp_path_factory: pytest.TempPathFactory) -> BuiltIso:
    try:
        find_mkosi()
    except BuilderError as e:
        pytest.fail(f"{e.message} ({e.hint})")
    work = tmp_path_factory.mktemp("iso")
    deb = make_test_deb(work)
    t0 = time.monotonic()
    try:
        outputs = build_image(make_profile(), [deb], work / "out", "iso", image_cache_dir(), None, Stages())
    except BuilderError as e:
        pytest.fail(f"ISO build failed: {e.message}\nhint: {e.hint}")
    seconds = time.monotonic() - t0
    (iso,) = [p for p in outputs if p.suffix == ".iso"]
    print(f"\nISO build: {seconds:.0f}s, {iso.stat().st_size >> 20} MiB")
    return BuiltIso(iso, seconds)


def _xorriso(iso: Path, *commands: str) -> str:
    proc = subprocess.run(["xorriso", "-indev", str(iso), *commands], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_iso_has_efi_boot_image_payload_and_menu(built_iso: BuiltIso, tmp_path: Path) -> None:
    iso = built_iso.iso
    assert iso.name == "imgtest-installer.iso"
    assert not [p.name for p in iso.parent.iterdir() if p.name.startswith(".")], "temporary files left"
    report = _xorriso(iso, "-report_el_torito", "plain")
    assert re.search(r"El Torito boot img :\s+1\s+UEFI\s+y\s+none", report), report
    assert f"El Torito img path :   1  /{ESP_FILE}" in report
    listing = _xorriso(iso, "-lsl", "/cluster-image")
    # size, month, day, time, name: `ls -l` pads a one-digit day with a second space ("Dec  3")
    m = re.search(r"(\d+)\s+\S+\s+\d+\s+\S+\s+'imgtest\.raw\.zst'", listing)
    assert m and int(m.group(1)) > 50 << 20, listing
    assert "'imgtest.raw.size'" in listing
    # USB stick: GPT with the ESP as a partition.
    table = subprocess.run(["sfdisk", "--json", str(iso)], capture_output=True, text=True, check=True).stdout
    assert "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" in table.upper()
    # The ESP: systemd-boot, the installer UKI, one menu entry per node.
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", f"/{ESP_FILE}",
                    str(tmp_path / "esp.img")], check=True, capture_output=True)  # fmt: skip
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    files = subprocess.run(["mdir", "-/", "-b", "-i", str(tmp_path / "esp.img"), "::/"], env=env,
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    for f in ("::/EFI/BOOT/BOOTX64.EFI", "::/installer/imgtest-installer.efi", "::/loader/loader.conf"):
        assert f in files, files
    entries = ""
    for name in re.findall(r"::/loader/entries/(\S+\.conf)", files):
        entries += subprocess.run(["mtype", "-i", str(tmp_path / "esp.img"), f"::/loader/entries/{name}"],
                                  env=env, capture_output=True, text=True, check=True).stdout  # fmt: skip
    for node in ("alpha", "beta"):
        assert f"cluster.node={node}" in entries
    assert entries.count("title ") == 3


# -- slow: boot --------------------------------------------------------------


def _blank_qcow2(path: Path, size: str = "8G") -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return path


@pytest.mark.slow
def test_installs_unattended_then_the_disk_boots(built_iso: BuiltIso, tmp_path: Path) -> None:
    from tests.image.test_boot import MULTI_USER, boot_until

    disk = _blank_qcow2(tmp_path / "disk.qcow2")
    t0 = time.monotonic()
    install_from_iso(built_iso.iso, disk, "beta", tmp_path / "install", INSTALL_TIMEOUT)
    installed = time.monotonic() - t0
    console = (tmp_path / "install" / "install-console.log").read_text(errors="replace")
    # The menu's default entry leaves identity to first boot; the node came as a credential.
    cmdline = re.search(r"Kernel command line: (.*)", console)
    assert cmdline and "console=ttyS0" in cmdline.group(1) and "cluster.node" not in cmdline.group(1)
    assert "cluster-install: /dev/vda is blank" in console
    assert "cluster-install: recorded identity: node beta" in console

    # The identity, as the node agent will read it (credential for cluster-firstboot).
    raw = tmp_path / "installed.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(disk), str(raw)], check=True)
    # The image's backup GPT is not at the disk's end until first boot: move it (sfdisk warns otherwise).
    subprocess.run(["sfdisk", "-q", "--relocate", "gpt-bak-std", str(raw)], check=True, capture_output=True)
    root = RootFs(raw)
    assert root.read("/etc/credstore/cluster.node") == b"beta\n"
    credstore = root.stat("/etc/credstore")
    assert credstore is not None and credstore.mode & 0o777 == 0o700
    dropin = root.read("/etc/systemd/system/cluster-firstboot.service.d/50-installer-node.conf").decode()
    assert "LoadCredential=cluster.node:/etc/credstore/cluster.node" in dropin
    raw.unlink()

    # Then the disk alone boots, and first boot makes the DRBD partition.
    wanted = {"check unit": re.compile(rf"{MARK} done"), "multi-user": MULTI_USER}
    (tmp_path / "boot").mkdir()
    text, seconds = boot_until(disk, tmp_path / "boot", wanted, BOOT_TIMEOUT)
    print(f"\ninstall: {installed:.0f}s; first boot: {seconds}")
    assert f"{MARK} drbd-partition=present" in text, text[-3000:]


def _digest(path: Path) -> str:
    """First and last MiB and the size of a (sparse) raw disk: where labels live."""
    h = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(size - (1 << 20))
        h.update(f.read(1 << 20))
    return f"{size}:{h.hexdigest()}"


@pytest.mark.slow
def test_refuses_a_disk_with_a_partition_table_unless_forced(built_iso: BuiltIso, tmp_path: Path) -> None:
    disk = tmp_path / "used.raw"
    subprocess.run(["truncate", "-s", "8G", str(disk)], check=True)
    subprocess.run(["sfdisk", "-q", str(disk)], input="label: gpt\n,1G,L\n", text=True, check=True)
    before = _digest(disk)
    with pytest.raises(InstallRefused) as refused:
        install_from_iso(built_iso.iso, disk, None, tmp_path / "refused", INSTALL_TIMEOUT)
    message = refused.value.message
    assert "REFUSED: /dev/vda is not blank" in message, message
    assert "cluster.install-force=1" in message
    assert _digest(disk) == before, "the refused disk was changed"

    install_from_iso(built_iso.iso, disk, None, tmp_path / "forced", INSTALL_TIMEOUT, force=True)
    console = (tmp_path / "forced" / "install-console.log").read_text(errors="replace")
    assert "erasing it (cluster.install-force=1)" in console
    assert "cluster-install: INSTALLED" in console
    assert "recorded identity" not in console
    assert _digest(disk) != before


@pytest.mark.slow
def test_installs_from_the_iso_written_to_a_usb_stick(built_iso: BuiltIso, tmp_path: Path) -> None:
    disk = _blank_qcow2(tmp_path / "disk.qcow2")
    install_from_iso(built_iso.iso, disk, None, tmp_path / "usb", INSTALL_TIMEOUT, usb=True)
    console = (tmp_path / "usb" / "install-console.log").read_text(errors="replace")
    assert "cluster-install: medium: /dev/sda (disk /dev/sda)" in console
    assert "cluster-install: target disk: /dev/vda" in console  # never the stick
    assert "cluster-install: INSTALLED" in console
