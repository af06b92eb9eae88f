"""The packaging stage's entry point: profile + staging tree -> packages."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from builder.errors import BuilderError, InputError
from builder.packaging.deb import write_deb
from builder.packaging.model import _BUILD, package_model
from builder.packaging.rpm import write_rpm
from builder.profile.model import Profile
from builder.staging import Tree

FORMATS = ("deb", "rpm")


def formats_from(choice: str) -> tuple[str, ...]:
    """CLI value deb|rpm|all -> formats."""
    if choice == "all":
        return FORMATS
    if choice in FORMATS:
        return (choice,)
    raise BuilderError(f"unknown package format {choice!r}", hint="use deb, rpm or all")


def check_build_number(value: str | None) -> str | None:
    """--build-number, checked before anything is built (None: a UTC timestamp at build time)."""
    if value is not None and not _BUILD.fullmatch(value):
        raise InputError(f"--build-number {value!r}: not a build number",
                         hint="use digits, letters and dots, starting with a digit, e.g. 3 or 20250101120000")
    return value


def build_packages(
    profile: Profile,
    tree: Tree,
    formats: Iterable[str],
    out_dir: Path,
    build_number: str | None = None,
) -> list[Path]:
    """Write the cluster package in each format into out_dir; returns the files."""
    formats = tuple(formats)
    for f in formats:
        formats_from(f)
    pkg = package_model(profile, tree, check_build_number(build_number))
    out_dir = out_dir.absolute()  # the writers' tools run in other folders
    writers = {"deb": write_deb, "rpm": write_rpm}
    wanted = [writers[f] for f in FORMATS if f in formats]
    # The writers are independent and mostly wait on dpkg-deb / rpmbuild: run them side by side.
    with ThreadPoolExecutor(max_workers=len(wanted) or 1) as pool:
        return list(pool.map(lambda write: write(pkg, out_dir), wanted))
