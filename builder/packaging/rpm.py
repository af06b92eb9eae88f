"""The .rpm writer: a spec from the package model, built with rpmbuild (noarch)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from builder.errors import BuilderError
from builder.packaging import docs
from builder.packaging.deb import top_dirs, write_tree
from builder.packaging.model import DISPLACED, STATE_DIR, Package
from builder.run import run
from builder.staging import StagedFile


def rpm_files(pkg: Package) -> list[StagedFile]:
    """The tree, with displaced files shipped beside their target (RPM has no
    diversions: %post copies them into place)."""
    return sorted([*pkg.shipped_files(), *docs.manpages(pkg)], key=lambda f: str(f.path))


def spec_text(pkg: Package, tree_dir: Path) -> str:
    return docs.render(
        "rpm/cluster.spec.j2",
        pkg=pkg,
        files=rpm_files(pkg),
        tree_dir=tree_dir,
        state_dir=STATE_DIR,
        displaced_owner=DISPLACED,
        agent_dirs=top_dirs(pkg.owned_dirs, "/usr"),
        date=time.strftime("%a %b %d %Y", time.gmtime(docs.build_time())),
    )


# The spec's %install runs `cp -a <tree>/. ...` in a shell and rpm expands % in macros:
# rpmbuild works in a folder whose absolute path holds none of those characters.
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9/._-]*")


def _work_dir() -> Path:
    for base in (tempfile.gettempdir(), "/var/tmp", "/tmp"):
        if _PLAIN_PATH.fullmatch(os.path.abspath(base)) and os.path.isdir(base):
            return Path(tempfile.mkdtemp(prefix="builder-rpm-", dir=os.path.abspath(base)))
    raise BuilderError("no temporary folder with a plain path for rpmbuild", hint="set TMPDIR=/tmp")


def write_rpm(pkg: Package, out_dir: Path) -> Path:
    """Build <name>-<version>-<build>.noarch.rpm in out_dir; returns its path."""
    out_dir = out_dir.absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    top = _work_dir()
    try:
        tree = top / "tree"
        write_tree(tree, rpm_files(pkg))
        spec = top / f"{pkg.name}.spec"
        spec.write_text(spec_text(pkg, tree))
        run(
            [
                "rpmbuild",
                "-bb",
                "--quiet",
                "--define",
                f"_topdir {top}",
                "--define",
                f"_rpmdir {top / 'out'}",
                "--define",
                "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
                # payload compression every rpm >= 4.6 reads (EL6 and later)
                "--define",
                "_binary_payload w2.xzdio",
                spec,
            ],
            env={**os.environ, "LC_ALL": "C"},
        )
        # Copied beside its final name, then renamed: it appears whole or not at all.
        dest = out_dir / pkg.rpm_filename
        tmp = out_dir / f".{pkg.rpm_filename}.tmp"
        try:
            shutil.copyfile(top / "out" / pkg.rpm_filename, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return dest
