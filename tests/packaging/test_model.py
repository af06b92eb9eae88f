"""The package model and the generated control files: golden files, and checks of the rules."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path, PurePosixPath

import pytest

from builder.errors import BuilderError
from builder.packaging import deb, rpm
from builder.packaging.build import formats_from
from builder.packaging.model import FIRSTBOOT_UNIT, Package, build_number_now, package_model
from builder.staging import StagedFile, Tree
from tests.golden import check_golden
from tests.packaging import fixtures

GOLDEN = Path(__file__).parent / "golden"


def describe(pkg: Package) -> str:
    """The model as stable text: what the golden file pins."""
    files = [
        f"{f.mode:04o} {f.path}" + (" conffile" if f.is_conffile else "") + (" secret" if f.secret else "")
        for f in pkg.files
    ]
    return (
        json.dumps(
            {
                "name": pkg.name,
                "deb_version": pkg.deb_version,
                "deb_filename": pkg.deb_filename,
                "rpm_filename": pkg.rpm_filename,
                "summary": pkg.summary,
                "maintainer": pkg.maintainer,
                "deb_depends": pkg.deb_depends,
                "rpm_requires": pkg.rpm_requires,
                "conffiles": pkg.conffiles,
                "displaced": pkg.displaced,
                "owned_dirs": pkg.owned_dirs,
                "firstboot_unit": pkg.firstboot_unit,
                "boot_disabled_units": pkg.boot_disabled_units,
                "files": files,
            },
            indent=2,
        )
        + "\n"
    )


def test_golden_pbx_ha_model(pkg: Package) -> None:
    files = deb.deb_files(pkg)
    actual = {"model.json": describe(pkg).encode()}
    # md5sums is left out: it changes with every byte of every file (the agent's
    # code included) and dpkg itself checks it at install.
    # Installed-Size likewise.
    actual |= {f"DEBIAN/{n}": re.sub(r"Installed-Size: \d+", "Installed-Size: N", t).encode()
               for n, (t, _) in deb.control_files(pkg, files).items() if n != "md5sums"}
    actual["DEBIAN-contents"] = "".join(f"{f.mode:04o} {f.path}\n" for f in files).encode()
    actual["lintian-overrides"] = next(f.data for f in files if "lintian/overrides" in str(f.path))
    actual["pbx-ha-cluster.spec"] = rpm.spec_text(pkg, Path("/TREE")).encode()
    check_golden(GOLDEN / "pbx-ha", actual)


def test_version_and_depends(pkg: Package) -> None:
    assert pkg.name == "pbx-ha-cluster"
    assert pkg.deb_filename == "pbx-ha-cluster_1.0-1_all.deb"
    assert pkg.rpm_filename == "pbx-ha-cluster-1.0-1.noarch.rpm"
    for dep in ("heartbeat", "drbd-utils", "python3", "chrony", "cron", "systemd", "mariadb-server"):
        assert dep in pkg.deb_depends
    assert "msmtp-mta | mail-transport-agent" in pkg.deb_depends
    for req in ("cronie", "msmtp", "httpd", "kamailio-mysql"):
        assert req in pkg.rpm_requires


def test_every_etc_file_is_a_conffile_and_secrets_are_root_only(pkg: Package) -> None:
    etc = [str(f.path) for f in pkg.shipped_files() if str(f.path).startswith("/etc/")]
    assert sorted(pkg.conffiles) == sorted(etc)
    assert {"/etc/ha.d/authkeys", "/etc/drbd.d/r0.res"} <= set(pkg.secrets)
    assert all(f.mode & 0o077 == 0 for f in pkg.files if f.secret)
    assert all(f.mode == 0o600 for f in pkg.files if f.secret and f.is_conffile)


def test_boot_disabled_has_services_sockets_and_heartbeat(pkg: Package) -> None:
    units = pkg.boot_disabled_units
    assert {"mariadb.service", "mariadb.socket", "heartbeat.service", "logd.service"} <= set(units)
    assert FIRSTBOOT_UNIT not in units


def test_build_number_grows_and_is_checked() -> None:
    assert build_number_now().isdigit() and len(build_number_now()) == 14
    with pytest.raises(BuilderError, match="bad build number"):
        package_model(fixtures.profile(), fixtures.tree(), "1-2")


def test_version_ordering_upgrades(tmp_path: Path) -> None:
    import subprocess

    old, new = "1.0-20250101000000", "1.0-20250101000001"
    assert subprocess.run(["dpkg", "--compare-versions", new, "gt", old]).returncode == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: dataclasses.replace(f, mode=0o644) if f.secret else f, "must be 0600"),
        (
            lambda f: dataclasses.replace(f, path=PurePosixPath("/var/lib/cluster/x")) if f.path.name == "ha.cf" else f,
            "node state",
        ),
        (
            lambda f: dataclasses.replace(f, path=PurePosixPath("/etc/a b")) if f.path.name == "ha.cf" else f,
            "unpackageable",
        ),
    ],
)
def test_bad_trees_are_refused(change, message: str) -> None:  # type: ignore[no-untyped-def]
    tree = Tree(tuple(change(f) for f in fixtures.tree()))
    with pytest.raises(BuilderError, match=message):
        package_model(fixtures.profile(), tree, "1")


def test_tree_without_firstboot_unit_is_refused() -> None:
    tree = Tree(tuple(f for f in fixtures.tree() if f.path.name != FIRSTBOOT_UNIT))
    with pytest.raises(BuilderError, match=FIRSTBOOT_UNIT):
        package_model(fixtures.profile(), tree, "1")


def test_formats() -> None:
    assert formats_from("all") == ("deb", "rpm")
    with pytest.raises(BuilderError):
        formats_from("apk")


def test_duplicate_path_refused() -> None:
    files = fixtures.tree().files
    with pytest.raises(BuilderError, match="twice"):
        package_model(fixtures.profile(), Tree((*files, StagedFile(files[0].path, b""))), "1")
