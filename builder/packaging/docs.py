"""Files the package adds beside the staging tree: man page, copyright, changelog."""

from __future__ import annotations

import gzip
import os
import time
from email.utils import formatdate
from pathlib import PurePosixPath

import jinja2

from builder import templates, templating
from builder.packaging.model import Package
from builder.staging import StagedFile

# One loader over the data root: names are "debian/control.j2", "rpm/cluster.spec.j2", "man/clusterctl.8.j2".
TEMPLATES = templating.environment(jinja2.FileSystemLoader(templates.DATA), trim_blocks=True, lstrip_blocks=True)


def render(template: str, **values: object) -> str:
    return TEMPLATES.get_template(template).render(**values)


def build_time() -> float:
    """SOURCE_DATE_EPOCH when set (reproducible builds), else now."""
    return float(os.environ.get("SOURCE_DATE_EPOCH") or time.time())


def gz(data: bytes) -> bytes:
    # mtime=0 and no file name: the same input gives the same bytes (gzip -9n).
    return gzip.compress(data, compresslevel=9, mtime=0)


def manpages(pkg: Package) -> list[StagedFile]:
    paths = {str(f.path) for f in pkg.files}
    if "/usr/sbin/clusterctl" not in paths:
        return []
    man = PurePosixPath("/usr/share/man/man8/clusterctl.8.gz")
    if str(man) in paths:
        return []
    return [StagedFile(man, gz(render("man/clusterctl.8.j2", pkg=pkg).encode()))]


def copyright_text(pkg: Package) -> str:
    return render("debian/copyright.j2", pkg=pkg, year=time.gmtime(build_time()).tm_year)


def changelog_text(pkg: Package) -> str:
    return render("debian/changelog.j2", pkg=pkg, date=formatdate(build_time()))
