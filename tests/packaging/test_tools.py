"""The built packages as the real tools see them: dpkg-deb, lintian, rpm, rpmlint, shellcheck."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

from builder import templates
from builder.packaging import deb
from builder.packaging.model import Package

RPMLINT_CONFIG = templates.folder("rpm") / "rpmlint.toml"


def sh(*argv: str | Path, check: bool = True) -> str:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_deb_contents_modes_and_owners(built: dict[str, Path], pkg: Package) -> None:
    rows = {path: (mode, owner) for mode, owner, path in deb.contents(built["deb"])}
    for f in pkg.shipped_files():
        mode, owner = rows[str(f.path)]
        assert owner == "root/root"
        assert mode == stat.filemode(stat.S_IFREG | f.mode), f.path
        if f.secret:
            assert mode.endswith("------"), f.path
    assert all(m == "drwxr-xr-x" for m, _, p in deb.contents(built["deb"]) if p.endswith("/"))
    info = sh("dpkg-deb", "--field", built["deb"], "Package", "Version", "Architecture")
    assert "Architecture: all" in info and "Version: 1.0-1" in info
    conffiles = sh("dpkg-deb", "--info", built["deb"], "conffiles").split()
    assert sorted(conffiles) == sorted(pkg.conffiles)


def test_lintian_clean(built: dict[str, Path]) -> None:
    # -E/-I show experimental and info tags; the gate is: no error, no warning.
    out = sh("lintian", "--fail-on", "error,warning", "-EI", "--pedantic", built["deb"], check=False)
    bad = [line for line in out.splitlines() if line[:2] in ("E:", "W:")]
    assert not bad, out


def test_rpmlint_clean(built: dict[str, Path]) -> None:
    proc = subprocess.run(["rpmlint", "-c", str(RPMLINT_CONFIG), str(built["rpm"])], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    assert re.search(r"0 errors, 0 warnings", proc.stdout), proc.stdout


def test_rpm_requires_and_conffiles(built: dict[str, Path], pkg: Package) -> None:
    requires = sh("rpm", "-qp", "--requires", built["rpm"]).split("\n")
    for req in pkg.rpm_requires:
        assert req in requires
    configs = sh("rpm", "-qpc", built["rpm"]).split()
    displaced = {f"{p}.{pkg.name}" for p in pkg.displaced}
    assert sorted(configs) == sorted(pkg.conffiles)
    assert displaced <= set(configs)
    listing = sh("rpm", "-qplv", built["rpm"])
    assert re.search(r"^-rw------- .* /etc/ha\.d/authkeys$", listing, re.M)
    assert re.search(r"^-rwxr-xr-x .* /usr/sbin/clusterctl$", listing, re.M)
    info = sh("rpm", "-qpi", built["rpm"])
    assert re.search(r"^Architecture: noarch", info, re.M)


def _scriptlets(built: dict[str, Path], tmp_path: Path) -> list[Path]:
    control = tmp_path / "DEBIAN"
    sh("dpkg-deb", "--control", built["deb"], control)
    scripts = [control / n for n in deb.SCRIPTS]
    text = sh("rpm", "-qp", "--scripts", built["rpm"])
    for i, body in enumerate(re.split(r"^\S+ scriptlet \(using /bin/sh\):\n", text, flags=re.M)[1:]):
        path = tmp_path / f"rpm-scriptlet-{i}"
        path.write_text("#!/bin/sh\nset -- 1\n" + body)
        scripts.append(path)
    return scripts


def test_shellcheck_maintainer_scripts(built: dict[str, Path], tmp_path: Path) -> None:
    scripts = _scriptlets(built, tmp_path)
    assert len(scripts) >= 7
    proc = subprocess.run(["shellcheck", "-s", "sh", *map(str, scripts)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
