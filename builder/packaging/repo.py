"""Package repositories a node installs from: a flat apt repo and a yum repo.

Unsigned, for a local or internal mirror; a node uses it with
  deb [trusted=yes] file:/path/to/repo/apt ./
or, over HTTP,  deb [trusted=yes] http://host/repo/apt ./
and on RPM distributions a .repo file with baseurl=file:///path/to/repo/yum, gpgcheck=0.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Sequence
from pathlib import Path

from builder.errors import BuilderError
from builder.outdir import replace_dir
from builder.run import run


def build_repo(packages: Sequence[Path], out_dir: Path, *, profile_name: str = "") -> Path:
    """Write out_dir/apt (Packages, Packages.gz, Release) and out_dir/yum (repodata/)
    from the given .deb and .rpm files; returns out_dir. Replaces each atomically, and
    only a folder `builder repo` made (builder.outdir)."""
    debs = [p for p in packages if p.suffix == ".deb"]
    rpms = [p for p in packages if p.suffix == ".rpm"]
    unknown = [p for p in packages if p.suffix not in (".deb", ".rpm")]
    if unknown:
        raise BuilderError(f"not a .deb or .rpm: {', '.join(map(str, unknown))}")
    out_dir.mkdir(parents=True, exist_ok=True)
    if debs:
        replace_dir(out_dir / "apt", lambda d: _apt(debs, d), command="repo", profile_name=profile_name, mode=0o755)
    if rpms:
        replace_dir(out_dir / "yum", lambda d: _yum(rpms, d), command="repo", profile_name=profile_name, mode=0o755)
    return out_dir


def _apt(debs: Sequence[Path], d: Path) -> None:
    for deb in debs:
        shutil.copy2(deb, d / deb.name)
    packages = run(["apt-ftparchive", "packages", "."], cwd=d).stdout
    (d / "Packages").write_text(packages)
    (d / "Packages.gz").write_bytes(gzip.compress(packages.encode(), mtime=0))
    release = run(
        [
            "apt-ftparchive",
            "-o",
            "APT::FTPArchive::Release::Origin=builder",
            "-o",
            "APT::FTPArchive::Release::Label=builder",
            "-o",
            "APT::FTPArchive::Release::Description=cluster packages made by builder",
            "release",
            ".",
        ],
        cwd=d,
    ).stdout
    (d / "Release").write_text(release)


def _yum(rpms: Sequence[Path], d: Path) -> None:
    for rpm in rpms:
        shutil.copy2(rpm, d / rpm.name)
    run(["createrepo_c", "--quiet", "--no-database", d])
