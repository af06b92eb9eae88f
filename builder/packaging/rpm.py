"""The .rpm writer: a spec from the package model, built with rpmbuild (noarch)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

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


def write_rpm(pkg: Package, out_dir: Path) -> Path:
    """Build <name>-<version>-<build>.noarch.rpm in out_dir; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".rpm-", dir=out_dir) as tmp:
        top = Path(tmp)
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
        dest = out_dir / pkg.rpm_filename
        os.replace(top / "out" / pkg.rpm_filename, dest)
    return dest
