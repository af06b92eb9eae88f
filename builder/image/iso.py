"""The bare-metal installer ISO: <cluster>-installer.iso (`builder image --format iso`).

mkosi has no ISO output, and a hybrid ISO of the disk image boots from a USB
stick but not as a CD (the root partition is out of reach). So the ISO carries
the node image as a file and a small installer system that writes it to disk:

    ISO 9660 (volume id LABEL)       cluster-image/<cluster>.raw.zst   the node image
                                     cluster-image/<cluster>.raw.size  its size in bytes
                                     efiboot.img   the ESP, a FAT file system image
    efiboot.img is the El Torito EFI boot image (a CD) and GPT partition 2 (a
    USB stick), so both boot the same ESP:
        EFI/BOOT/BOOTX64.EFI         systemd-boot
        installer/<cluster>-installer.efi   a UKI whose initrd is the whole
                                     installer system (Debian, built with mkosi
                                     Format=uki; runs from memory)
        loader/loader.conf           default: the identity-less entry, short timeout
        loader/entries/*.conf        one entry per node (cluster.node=NAME) + one
                                     that leaves identity to first boot

The installer's options (cluster.install-disk=, cluster.install-force=1,
cluster.node=) come from the entry's command line, else from systemd credentials
of the same name (SMBIOS type 11: how tests and the lab choose without a menu).
Its behaviour is in mkosi/installer/install.sh.

The installer system is always Debian trixie (its systemd has ImportCredential=),
whatever release the nodes run. Its mkosi build shares the node build's cache
folder but keeps its incremental cache apart (`cache-installer/`): mkosi names
the cache after distribution~release~arch, which would collide with a trixie
node image.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder import templates, tools
from builder.errors import BuilderError, InputError
from builder.image.config import TOOLS_TREE_RELEASE, _text, resolve_mirrors
from builder.image.mkosi_tool import MkosiTool, mkosi_argv
from builder.image.stream import run_logged
from builder.outdir import replace_dir
from builder.profile.model import Profile
from builder.run import run

Progress = Callable[[str], None]

INSTALLER_RELEASE = TOOLS_TREE_RELEASE
INSTALLER_PACKAGES = (
    "eject",
    "kmod",
    "linux-image-amd64",
    "mount",
    "systemd",
    "systemd-boot-efi",  # the UKI's stub and the ISO's systemd-boot
    "udev",
    "util-linux",
    "zstd",
)
# Relative to /usr/lib/modules/<kver>/kernel; dependencies come along.
INSTALLER_MODULES = (
    "default",
    r"^drivers/(ata|scsi|nvme|block|virtio|cdrom|mmc|message/fusion)/",
    r"^drivers/usb/(storage|host|core)/",
    r"^drivers/firmware/(efi|qemu_fw_cfg)",
    r"^fs/(isofs|ext4|jbd2|fat|vfat|nls)/",
)
# Serial last: /dev/console is ttyS0 when there is one (tests and BMC
# serial-over-LAN read it); install.sh also writes to tty1 for a monitor.
INSTALLER_CMDLINE = ("console=tty0", "console=ttyS0,115200", "audit=0", "systemd.show_status=yes")
MENU_TIMEOUT = 5
IMAGE_DIR = "cluster-image"
ESP_FILE = "efiboot.img"
AUTO_ENTRY = "10-install.conf"


@dataclass(frozen=True)
class MenuEntry:
    file: str  # loader/entries/<file>
    title: str
    sort_key: str
    options: str
    node: str | None


@dataclass(frozen=True)
class InstallerSpec:
    cluster: str
    output: str  # <cluster>-installer
    release: str
    mirror: str
    security: str | None
    packages: tuple[str, ...]
    modules: tuple[str, ...]
    kernel_cmdline: tuple[str, ...]
    label: str  # ISO 9660 volume id, how the installer finds its medium
    image_path: str  # the compressed node image, relative to the ISO root
    nodes: tuple[str, ...]
    seed: str
    menu_timeout: int = MENU_TIMEOUT
    default_entry: str = AUTO_ENTRY

    @property
    def uki_path(self) -> str:
        return f"installer/{self.output}.efi"

    @property
    def iso_name(self) -> str:
        return f"{self.output}.iso"

    def entries(self) -> list[MenuEntry]:
        base = " ".join(self.kernel_cmdline)
        out = [
            MenuEntry(
                AUTO_ENTRY,
                f"Install {self.cluster} (node identity found at first boot)",
                f"{self.cluster}-10",
                base,
                None,
            )
        ]
        for i, node in enumerate(self.nodes, start=1):
            out.append(
                MenuEntry(
                    f"{20 + i:02d}-install-{node}.conf",
                    f"Install {self.cluster} as node {node}",
                    f"{self.cluster}-{20 + i:02d}",
                    f"{base} cluster.node={node}",
                    node,
                )
            )
        return out


def iso_label(cluster: str) -> str:
    """An ISO 9660 volume id (d-characters, at most 32) unique to the cluster's installer."""
    stem = re.sub(r"[^A-Z0-9_]", "_", cluster.upper())[:24]
    return f"{stem}_INSTALL"


def installer_spec(profile: Profile, *, mirrors: tuple[str, str | None] | None = None) -> InstallerSpec:
    mirror, security = mirrors or resolve_mirrors(profile)
    name = profile.cluster.name
    return InstallerSpec(
        cluster=name,
        output=f"{name}-installer",
        release=INSTALLER_RELEASE,
        mirror=mirror,
        security=security,
        packages=INSTALLER_PACKAGES,
        modules=INSTALLER_MODULES,
        kernel_cmdline=INSTALLER_CMDLINE,
        label=iso_label(name),
        image_path=f"{IMAGE_DIR}/{name}.raw.zst",
        nodes=tuple(n.name for n in profile.nodes),
        seed=str(uuid.uuid5(uuid.NAMESPACE_URL, f"builder:installer:{name}")),
    )


def render_files(spec: InstallerSpec, *, tools_tree: Path | None) -> dict[str, tuple[str, int]]:
    """Relative path -> (text, mode) of the installer's mkosi folder."""
    files: dict[str, tuple[str, int]] = {}

    def add(path: str, text: str, mode: int = 0o644) -> None:
        files[path] = (text, mode)

    add("mkosi.conf", _text("installer/mkosi.conf.j2", spec=spec))
    sources = {"mirror": spec.mirror, "security": spec.security}
    add(
        "sandbox/etc/apt/sources.list.d/mkosi.sources",
        _text("apt.sources.j2", release=spec.release, purpose="the installer build", **sources),
    )
    add("postinst", _text("installer/postinst.j2", spec=spec), 0o755)
    add("extra/usr/lib/cluster-installer/installer.conf", _text("installer/installer.conf.j2", spec=spec))
    script = (templates.folder("images") / "installer" / "install.sh").read_text()
    add("extra/usr/lib/cluster-installer/install.sh", script, 0o755)
    add(
        "extra/usr/lib/systemd/system/cluster-installer.service",
        _text("installer/cluster-installer.service.j2", spec=spec),
    )
    if tools_tree is not None:
        # The node build's tools tree (same mirror, same release): reused as is.
        add(
            "mkosi.conf.d/10-tools-tree.conf",
            f"# Rendered by builder.image.iso: the node image build's tools tree.\n[Build]\nToolsTree={tools_tree}\n",
        )
    return files


def loader_files(spec: InstallerSpec) -> dict[str, str]:
    """The ESP's systemd-boot configuration: relative path -> text."""
    files = {"loader/loader.conf": _text("installer/loader.conf.j2", spec=spec)}
    for e in spec.entries():
        files[f"loader/entries/{e.file}"] = _text(
            "installer/entry.conf.j2", spec=spec, title=e.title, sort_key=e.sort_key, options=e.options
        )
    return files


def render(spec: InstallerSpec, dest: Path, *, tools_tree: Path | None) -> Path:
    """Write the installer's mkosi folder to `dest`, replacing whatever was there (atomically)."""

    def fill(tmp: Path) -> None:
        for rel, (text, mode) in sorted(render_files(spec, tools_tree=tools_tree).items()):
            f = tmp / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
            os.chmod(f, mode)
        for d in tmp.rglob("*"):
            if d.is_dir():
                os.chmod(d, 0o755)

    # A cache folder of builder's own: no marker (mkosi reads the folder as is).
    return replace_dir(dest, fill, command=None, mode=0o755)


def build_installer(spec: InstallerSpec, cache_dir: Path, tool: MkosiTool, say: Progress) -> tuple[Path, Path]:
    """Build the installer UKI with mkosi: (UKI, systemd-boot binary) in cache_dir/output.

    The caller holds the cache folder's lock (build.py's _locked).
    """
    tools_tree: Path | None = None
    if tool.needs_tools_tree:
        tools_tree = cache_dir / "output" / "tools"
        if not tools_tree.is_dir():
            raise BuilderError(
                f"no mkosi tools tree in {tools_tree}",
                hint="the node image build makes it: run `builder image` with this --cache-dir first",
            )
    (cache_dir / "cache-installer").mkdir(parents=True, exist_ok=True)
    config_dir = render(spec, cache_dir / "config" / spec.output, tools_tree=tools_tree)
    log_file = cache_dir / "logs" / f"{spec.output}.log"
    log_file.write_text("")

    def on_line(line: str) -> None:
        s = line.strip()
        if line.startswith("‣") and len(s) > 2:
            say("installer: " + s.lstrip("‣ ").strip())

    run_logged(
        mkosi_argv(tool, config_dir, cache_dir, cache="cache-installer"),
        log_file,
        env={**os.environ, **tool.env},
        cwd=config_dir,
        on_line=on_line,
        hint=f"the whole mkosi output is in {log_file}",
    )
    uki = cache_dir / "output" / f"{spec.output}.efi"
    boot = cache_dir / "output" / f"{spec.output}.bootx64.efi"
    for f in (uki, boot):
        if not f.is_file():
            raise BuilderError(f"mkosi finished but wrote no {f}", hint=f"see {log_file}")
    return uki, boot


def make_esp(spec: InstallerSpec, uki: Path, boot: Path, dest: Path) -> Path:
    """A FAT file system image (no partition table): systemd-boot, the installer UKI, the menu."""
    loader = loader_files(spec)
    payload = uki.stat().st_size + boot.stat().st_size + sum(len(t) for t in loader.values())
    size_kib = ((payload * 11 // 10) >> 10) + 8192  # FAT overhead and slack
    dest.unlink(missing_ok=True)
    run(["mkfs.vfat", "-C", "-n", "INSTALLER", "-S", "512", dest, str(size_kib)])
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    img = str(dest)
    run(["mmd", "-i", img, "::/EFI", "::/EFI/BOOT", "::/installer", "::/loader", "::/loader/entries"], env=env)
    run(["mcopy", "-i", img, boot, "::/EFI/BOOT/BOOTX64.EFI"], env=env)
    run(["mcopy", "-i", img, uki, f"::/{spec.uki_path}"], env=env)
    with tempfile.TemporaryDirectory(prefix="esp-", dir=dest.parent) as tmp:
        for rel, text in loader.items():
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / rel).write_text(text)
            run(["mcopy", "-i", img, Path(tmp) / rel, f"::/{rel}"], env=env)
    return dest


def xorriso_argv(spec: InstallerSpec, root: Path, output: Path) -> list[str]:
    """A hybrid ISO whose El Torito EFI boot image and GPT partition 2 are efiboot.img.

    The ESP is a file inside the ISO 9660 volume, not an appended partition: it
    is larger than El Torito's 32 MiB load size, so the catalog says 0 and OVMF
    (EDK2) then takes the El Torito partition to run to the volume's end. An
    appended partition lies past that end and OVMF found no file system on it.
    """
    return [
        "xorriso", "-as", "mkisofs",
        "-iso-level", "3",  # files over 4 GiB
        "-full-iso9660-filenames", "-joliet", "-joliet-long", "-rational-rock",
        "-volid", spec.label,
        "-appid", f"builder {spec.cluster} installer",
        "-e", f"/{ESP_FILE}", "-no-emul-boot",
        "-efi-boot-part", "--efi-boot-image",  # GPT partition 2 = the same blocks
        "-o", str(output),
        str(root),
    ]  # fmt: skip


def assemble_iso(
    spec: InstallerSpec, raw: Path, uki: Path, boot: Path, work: Path, output: Path, say: Progress
) -> Path:
    """Write the ISO to `output` (the caller renames it into place)."""
    shutil.rmtree(work, ignore_errors=True)
    root = work / "iso"
    (root / IMAGE_DIR).mkdir(parents=True)
    try:
        say(f"Compressing the node image for the ISO ({raw.stat().st_size >> 20} MiB, zstd)")
        image = root / spec.image_path
        run(["zstd", "-q", "-T0", "-6", "--sparse", "-f", raw, "-o", image])
        Path(str(image).removesuffix(".zst") + ".size").write_text(f"{raw.stat().st_size}\n")
        say("Making the ISO's EFI system partition (systemd-boot, installer, menu)")
        make_esp(spec, uki, boot, root / ESP_FILE)
        say(f"Writing {spec.iso_name} (xorriso)")
        output.unlink(missing_ok=True)
        run(xorriso_argv(spec, root, output))
        return output
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_iso(
    profile: Profile,
    raw: Path,
    out_dir: Path,
    cache_dir: Path,
    tool: MkosiTool,
    say: Progress,
    *,
    mirrors: tuple[str, str | None] | None = None,
) -> Path:
    """Build the installer and the ISO around `raw`; return the ISO under a temporary
    name in out_dir (`.<name>.tmp`): the caller renames it with its other outputs.

    The caller holds the cache folder's lock.
    """
    if not raw.is_file():
        raise InputError(f"no node image {raw}", hint="build it with `builder image --format raw` first")
    tools.require("iso")
    spec = installer_spec(profile, mirrors=mirrors)
    say(f"Building the installer system (Debian {spec.release}, mkosi Format=uki)")
    uki, boot = build_installer(spec, cache_dir, tool, say)
    tmp = out_dir / f".{spec.iso_name}.tmp"
    try:
        return assemble_iso(spec, raw, uki, boot, cache_dir / "iso-work", tmp, say)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
