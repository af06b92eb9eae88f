"""Packaging: the staging tree as a .deb and an .rpm, and repositories of them.

build_packages(profile, tree, ["deb", "rpm"], out_dir, build_number) -> [paths]
build_repo(paths, out_dir) -> out_dir  (out_dir/apt, out_dir/yum)
"""

from builder.packaging.build import FORMATS, build_packages, formats_from
from builder.packaging.repo import build_repo

__all__ = ["FORMATS", "build_packages", "build_repo", "formats_from"]
