"""Profile -> ImageSpec -> an mkosi configuration folder (rendered, never hand-edited).

`image_spec` decides every value (packages, units, kernel command line, apt
sources); `render` only writes them through the jinja2 templates in `mkosi/`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from builder import mirror as apt_sources
from builder import templates, templating
from builder.errors import InputError
from builder.outdir import replace_dir
from builder.profile.model import Profile
from builder.run import run

TEMPLATES = templates.folder("images")
TOOLS_TREE_RELEASE = "trixie"  # the release whose systemd-repart/ukify build the image

# Every node image has these; the profile adds its services' and extra packages.
BASE_PACKAGES = (
    "apt",
    "ca-certificates",
    "chrony",
    "dbus",
    "debian-archive-keyring",
    "drbd-utils",
    "e2fsprogs",
    "heartbeat",
    "iproute2",
    "kmod",
    "less",
    "linux-image-amd64",
    "netbase",
    "openssh-server",
    "procps",
    "python3",
    "systemd",
    "systemd-boot-efi",
    "systemd-sysv",
    "udev",
    "util-linux",
)
# In trixie systemd-repart is its own package: without it nothing is
# repartitioned at first boot (bookworm's systemd has it built in).
RELEASE_PACKAGES = {"trixie": ("systemd-repart",), "bookworm": ()}

# Started by heartbeat or the first-boot provisioning, never by boot itself.
# Debian ships no "disable *" preset, so `preset-all` enables every unit that is
# not listed: chrony-wait would hold multi-user for 3 minutes on a node without
# NTP, and chronyd-restricted conflicts with chrony. systemd-networkd-wait-online
# is also masked (postinst): systemd-networkd's Also= re-enables it otherwise.
DISABLED_UNITS = (
    "systemd-networkd-wait-online.service",
    "heartbeat.service",
    "logd.service",
    "drbd.service",
    "chrony-wait.service",
    "chronyd-restricted.service",
)
MASKED_UNITS = ("systemd-networkd-wait-online.service",)
ENABLED_UNITS = (
    "systemd-networkd.service",
    "chrony.service",
    "ssh.service",
    "builder-ssh-hostkeys.service",
)
# Serial console (the lab reads it); audit=0 keeps audit records off that console.
KERNEL_CMDLINE = ("console=ttyS0,115200", "rw", "audit=0")
ROOT_MIN_SIZE = "2G"


@dataclass(frozen=True)
class LocalDeb:
    path: Path
    package: str
    version: str


def read_deb(path: Path) -> LocalDeb:
    """A local .deb's name and version; it must carry what a local apt repository needs."""
    if not path.is_file():
        raise InputError(f"no such package file: {path}")
    proc = run(["dpkg-deb", "--field", path, "Package", "Version", "Section", "Priority"])
    fields = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition(":") for line in proc.stdout.splitlines())
        if v
    )
    missing = [f for f in ("Package", "Version", "Section", "Priority") if not fields.get(f)]
    if missing:
        raise InputError(
            f"{path}: no {', '.join(missing)} field in the package",
            hint="mkosi's local repository (reprepro) needs Section and Priority in DEBIAN/control",
        )
    return LocalDeb(path, fields["Package"], fields["Version"])


@dataclass(frozen=True)
class ImageSpec:
    cluster: str
    output: str  # file name stem: <cluster> or <cluster>-<node>
    release: str
    mirror: str
    security: str | None
    packages: tuple[str, ...]
    volatile_packages: tuple[str, ...]
    disabled_units: tuple[str, ...]
    masked_units: tuple[str, ...]
    enabled_units: tuple[str, ...]
    kernel_cmdline: tuple[str, ...]
    ssh_authorized_keys: tuple[str, ...]
    root_password: str | None
    seed: str
    root_min_size: str = ROOT_MIN_SIZE


def _unique(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(set(items)))


def resolve_mirrors(profile: Profile, root: Path = Path("/")) -> tuple[str, str | None]:
    """(Debian mirror, security archive): the profile's mirror, else the host's apt sources."""
    if profile.cluster.mirror:
        mirror = profile.cluster.mirror.rstrip("/")
        return mirror, apt_sources.security_mirror([], mirror)
    sources = apt_sources.host_sources(root)
    mirror_or_none = apt_sources.debian_mirror(sources)
    if not mirror_or_none:
        raise InputError(
            "no Debian mirror found in the host's apt sources (/etc/apt/sources.list{,.d/*})",
            hint="set cluster.mirror in the profile, e.g. http://<your-mirror>/debian",
        )
    return mirror_or_none, apt_sources.security_mirror(sources, mirror_or_none)


def image_spec(
    profile: Profile,
    debs: Sequence[LocalDeb] = (),
    node: str | None = None,
    *,
    mirrors: tuple[str, str | None] | None = None,
) -> ImageSpec:
    if node is not None and node not in {n.name for n in profile.nodes}:
        raise InputError(
            f"--node {node}: no such node in the profile",
            hint="use one of: " + ", ".join(n.name for n in profile.nodes),
        )
    mirror, security = mirrors or resolve_mirrors(profile)
    release = profile.cluster.release
    packages = [*BASE_PACKAGES, *RELEASE_PACKAGES[release], *profile.packages]
    if profile.drbd.filesystem == "xfs":
        packages.append("xfsprogs")
    for service in profile.services:
        packages += service.packages.deb
    disabled = [*DISABLED_UNITS, *(s.unit for s in profile.services)]
    cmdline = [*KERNEL_CMDLINE, *([f"cluster.node={node}"] if node else [])]
    name = profile.cluster.name
    return ImageSpec(
        cluster=name,
        output=f"{name}-{node}" if node else name,
        release=release,
        mirror=mirror,
        security=security,
        packages=_unique(packages),
        volatile_packages=_unique([d.package for d in debs]),
        disabled_units=tuple(dict.fromkeys(disabled)),
        masked_units=MASKED_UNITS,
        enabled_units=ENABLED_UNITS,
        kernel_cmdline=tuple(cmdline),
        ssh_authorized_keys=tuple(profile.ssh_authorized_keys),
        root_password=profile.root_password_hash,
        seed=str(uuid.uuid5(uuid.NAMESPACE_URL, f"builder:image:{name}")),
    )


_env = templating.environment(jinja2.FileSystemLoader(TEMPLATES))


def _text(template: str, **values: object) -> str:
    text = _env.get_template(template).render(**values)
    return text if text.endswith("\n") else text + "\n"


# Folders of the rendered tree whose mode matters: mkosi copies trees with
# `cp --preserve=mode`, so a folder's mode here becomes its mode in the image.
_DIR_MODES = {"extra/root": 0o700, "extra/root/.ssh": 0o700}
# drbd-utils (bookworm) fails with "trying to overwrite '/var/lock'" without an
# empty /run/lock in the build sandbox.
_EMPTY_DIRS = ("sandbox/run/lock",)


def render_files(spec: ImageSpec, *, tools_tree: bool) -> dict[str, tuple[str, int]]:
    """Relative path -> (text, mode) of every rendered file of the mkosi folder."""
    files: dict[str, tuple[str, int]] = {}

    def add(path: str, text: str, mode: int = 0o644) -> None:
        files[path] = (text, mode)

    add("mkosi.conf", _text("mkosi.conf.j2", spec=spec))
    add("repart/00-esp.conf", _text("repart/00-esp.conf.j2", spec=spec))
    add("repart/10-root.conf", _text("repart/10-root.conf.j2", spec=spec))
    # The build's own apt sources (mkosi's defaults include a debug archive that
    # answers 400); mkosi.sources is the name mkosi would otherwise write.
    sources = {"mirror": spec.mirror, "security": spec.security}
    add(
        "sandbox/etc/apt/sources.list.d/mkosi.sources",
        _text("apt.sources.j2", release=spec.release, purpose="the image build", **sources),
    )
    # The image's own apt sources: mkosi writes <release>.sources unless it exists.
    add(
        f"skeleton/etc/apt/sources.list.d/{spec.release}.sources",
        _text("apt.sources.j2", release=spec.release, purpose="the node", **sources),
    )
    add(
        "extra/usr/lib/systemd/system-preset/05-builder-image.preset",
        _text("preset.j2", spec=spec),
    )
    add(
        "extra/usr/lib/systemd/system/builder-ssh-hostkeys.service",
        _text("ssh-hostkeys.service.j2", spec=spec),
    )
    if spec.ssh_authorized_keys:
        add("extra/root/.ssh/authorized_keys", "".join(k + "\n" for k in spec.ssh_authorized_keys), 0o600)
    add("postinst.chroot", _text("postinst.chroot.j2", spec=spec), 0o755)
    if spec.root_password:
        add("mkosi.rootpw", f"hashed:{spec.root_password}\n", 0o600)
    if tools_tree:
        add(
            "mkosi.conf.d/10-tools-tree.conf",
            _text("tools-tree.conf.j2", spec=spec, release=TOOLS_TREE_RELEASE),
        )
        add(
            "tools-sandbox/etc/apt/sources.list.d/mkosi.sources",
            _text("apt.sources.j2", release=TOOLS_TREE_RELEASE, purpose="the tools tree", **sources),
        )
    return files


def render(spec: ImageSpec, dest: Path, debs: Sequence[LocalDeb] = (), *, tools_tree: bool) -> Path:
    """Write the mkosi folder to `dest`, replacing whatever was there (atomically)."""

    def fill(tmp: Path) -> None:
        for rel, (text, mode) in sorted(render_files(spec, tools_tree=tools_tree).items()):
            f = tmp / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
            os.chmod(f, mode)
        for rel in _EMPTY_DIRS:
            (tmp / rel).mkdir(parents=True, exist_ok=True)
        if debs:
            pkgdir = tmp / "volatile-packages"
            pkgdir.mkdir()
            for deb in debs:
                shutil.copyfile(deb.path, pkgdir / deb.path.name)
                os.chmod(pkgdir / deb.path.name, 0o644)
        # Folder modes do not depend on the caller's umask.
        for d in tmp.rglob("*"):
            if d.is_dir():
                os.chmod(d, _DIR_MODES.get(str(d.relative_to(tmp)), 0o755))

    # A cache folder of builder's own: no marker (mkosi reads the folder as is).
    return replace_dir(dest, fill, command=None, mode=0o700)


def snapshot(folder: Path) -> str:
    """A rendered folder as one text (for golden tests and `--debug`): path, mode, content."""
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        mode = p.stat().st_mode & 0o7777
        if p.is_dir():
            out.append(f"=== {rel}/ ({mode:04o})\n")
        elif p.suffix == ".deb":
            out.append(f"=== {rel} ({mode:04o}) [package]\n")
        else:
            out.append(f"=== {rel} ({mode:04o})\n{p.read_text()}")
    return "".join(out)

