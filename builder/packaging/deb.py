"""The .deb writer: the package model laid out for `dpkg-deb --build`."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path, PurePosixPath

from builder.packaging import docs
from builder.packaging.model import DISPLACED, STATE_DIR, Package
from builder.run import run
from builder.staging import StagedFile

SCRIPTS = ("preinst", "postinst", "prerm", "postrm")


def top_dirs(dirs: tuple[str, ...], under: str) -> list[str]:
    """The outermost of `dirs` below `under` (removing those removes the rest)."""
    inside = [d for d in dirs if d.startswith(under + "/")]
    return [d for d in inside if not any(d.startswith(o + "/") for o in inside)]


def deb_files(pkg: Package) -> list[StagedFile]:
    """The tree plus what Debian policy wants beside it."""
    doc = PurePosixPath("/usr/share/doc") / pkg.name
    overrides = PurePosixPath("/usr/share/lintian/overrides") / pkg.name
    cron = [str(f.path) for f in pkg.files if f.path.parent == PurePosixPath("/etc/cron.d")]
    return sorted(
        [
            *pkg.shipped_files(),
            *docs.manpages(pkg),
            StagedFile(doc / "copyright", docs.copyright_text(pkg).encode()),
            StagedFile(doc / "changelog.Debian.gz", docs.gz(docs.changelog_text(pkg).encode())),
            StagedFile(overrides, docs.render("debian/lintian-overrides.j2", pkg=pkg, cron_files=cron,
                                              displaced_owner=DISPLACED).encode()),
        ],
        key=lambda f: str(f.path),
    )


def control_files(pkg: Package, files: list[StagedFile]) -> dict[str, tuple[str, int]]:
    """DEBIAN/<name> -> (text, mode)."""
    size_kib = sum((len(f.data) + 1023) // 1024 for f in files) + len({p for f in files for p in f.path.parents})
    values = {
        "pkg": pkg,
        "installed_size": size_kib,
        "state_dir": STATE_DIR,
        "displaced_owner": DISPLACED,
        "purge_dirs": top_dirs(pkg.owned_dirs, "/etc"),
        "agent_dirs": top_dirs(pkg.owned_dirs, "/usr"),
    }
    out: dict[str, tuple[str, int]] = {
        "control": (docs.render("debian/control.j2", **values), 0o644),
        "conffiles": ("".join(f"{p}\n" for p in pkg.conffiles), 0o644),
        "md5sums": (
            "".join(f"{hashlib.md5(f.data).hexdigest()}  {str(f.path)[1:]}\n" for f in files if not f.is_conffile),
            0o644,
        ),
    }
    for name in SCRIPTS:
        out[name] = (docs.render(f"debian/{name}.j2", **values), 0o755)
    if not pkg.conffiles:
        del out["conffiles"]
    return out


def write_deb(pkg: Package, out_dir: Path) -> Path:
    """Build <name>_<version>_all.deb in out_dir; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = deb_files(pkg)
    with tempfile.TemporaryDirectory(prefix=".deb-", dir=out_dir) as tmp:
        root = Path(tmp) / "root"
        write_tree(root, files)
        control = root / "DEBIAN"
        control.mkdir(mode=0o755)
        for name, (text, mode) in control_files(pkg, files).items():
            (control / name).write_text(text)
            os.chmod(control / name, mode)
        built = Path(tmp) / pkg.deb_filename
        run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", root, built])
        dest = out_dir / pkg.deb_filename
        os.replace(built, dest)  # appears whole or not at all
    return dest


def write_tree(root: Path, files: list[StagedFile]) -> None:
    """Files with their exact modes; every directory 0755 (umask-proof)."""
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    for f in files:
        dest = root / str(f.path)[1:]
        for parent in reversed(dest.relative_to(root).parents[:-1]):
            d = root / parent
            if not d.is_dir():
                d.mkdir()
                os.chmod(d, 0o755)
        dest.write_bytes(f.data)
        os.chmod(dest, f.mode)


def contents(deb: Path) -> list[tuple[str, str, str]]:
    """(mode, owner, path) of each entry, as `dpkg-deb --contents` shows it."""
    lines = run(["dpkg-deb", "--contents", deb]).stdout.splitlines()
    rows = []
    for line in lines:
        parts = line.split(None, 5)
        rows.append((parts[0], parts[1], parts[5].removeprefix(".")))
    return rows
