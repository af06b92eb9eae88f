"""Acceptance, like nFPM's: the packages installed by the real apt, dpkg and rpm into a
Debian root (mmdebstrap, cached), upgraded and purged. Needs the Debian mirror: slow."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from builder import tools
from builder.mirror import mirror_for
from builder.packaging import build_packages, build_repo
from builder.packaging.model import Package
from builder.profile.model import Profile
from builder.run import run
from builder.staging import Tree
from tests.packaging.roots import Root, apt_cache_dir, root_tarball

pytestmark = pytest.mark.slow
APT = ["apt-get", "-y", "-q", "--no-install-recommends"]
KEEP_OLD = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]


@pytest.fixture(scope="session")
def tarball(pbx: Profile) -> Path:
    tools.require("tests")  # mmdebstrap, unshare, rpm: named, with the fix, before minutes of mmdebstrap
    # The profile's own release: the package's Depends are resolved against it.
    return root_tarball(pbx.cluster.release, mirror_for(pbx.cluster.mirror), include=["systemd"])


@pytest.fixture
def root(tarball: Path, tmp_path: Path, pbx: Profile):  # type: ignore[no-untyped-def]
    with Root(tarball, tmp_path, apt_cache=apt_cache_dir(pbx.cluster.release)) as r:
        r.run(["apt-get", "update", "-q"])
        yield r


def wants_links(root: Root) -> dict[str, str]:
    """unit name -> the .wants folder it is enabled in."""
    found = {}
    for d in root.file("/etc/systemd/system").glob("*.wants"):
        for link in d.iterdir():
            found[link.name] = d.name
    return found


def processes_in(root: Root) -> list[str]:
    names = []
    for proc in Path("/proc").iterdir():
        try:
            if os.readlink(proc / "root") == str(root.path):
                names.append((proc / "comm").read_text().strip())
        except OSError:
            continue
    return names


def assert_installed(root: Root, pkg: Package) -> None:
    for f in pkg.files:
        st = root.file(str(f.path)).lstat()
        assert stat.S_IMODE(st.st_mode) == f.mode, f.path
        assert (st.st_uid, st.st_gid) == (0, 0), f.path
        assert root.file(str(f.path)).read_bytes() == f.data, f.path
    links = wants_links(root)
    assert pkg.firstboot_unit in pkg.enabled_units
    for unit in pkg.enabled_units:
        assert links.get(unit) == "multi-user.target.wants", unit
    for unit in pkg.boot_disabled_units:
        assert unit not in links, f"{unit} still enabled in {links.get(unit)}"
    assert not [p for p in processes_in(root) if "heartbeat" in p]


def test_apt_install_upgrade_purge(
    root: Root, pkg: Package, built: dict[str, Path], pbx: Profile, pbx_tree: Tree, tmp_path: Path
) -> None:
    deb1 = root.copy_in(built["deb"], "/tmp/1/" + built["deb"].name)
    out = root.run([*APT, "install", deb1]).stdout
    for dep in ("heartbeat", "drbd-utils", "mariadb-server", "kamailio", "apache2"):
        assert f"Setting up {dep} " in out, dep
    assert_installed(root, pkg)
    overrides = root.run(["dpkg-statoverride", "--list"]).stdout
    # Where drbd-utils puts them differs by release (/lib or /usr/lib): ask dpkg.
    shipped = root.run(["dpkg", "-L", "drbd-utils"]).stdout.split()
    for name in ("drbdsetup-84", "drbdmeta"):
        path = next(p for p in shipped if p.endswith(f"/{name}"))
        assert f"root haclient 4750 {path}" in overrides
    diversions = root.run(["dpkg-divert", "--list", "pbx-ha-cluster"]).stdout
    assert "/etc/drbd.d/global_common.conf to /etc/drbd.d/global_common.conf.distrib" in diversions

    # a newer build upgrades and keeps a locally edited conffile
    hacf = root.file("/etc/ha.d/ha.cf")
    hacf.write_text(hacf.read_text() + "# local edit\n")
    (deb2,) = build_packages(pbx, pbx_tree, ["deb"], tmp_path / "b2", "2")
    root.run([*APT, *KEEP_OLD, "install", root.copy_in(deb2, "/tmp/2/" + deb2.name)])
    status = root.run(["dpkg-query", "-W", "-f=${Version} ${db:Status-Abbrev}", pkg.name]).stdout
    assert status.split()[:2] == ["1.0-2", "ii"]
    assert hacf.read_text().endswith("# local edit\n")
    assert wants_links(root).get(pkg.firstboot_unit) == "multi-user.target.wants"

    # purge: configs and state gone, the displaced and overridden files given back
    root.file("/var/lib/cluster").mkdir(exist_ok=True)
    root.file("/var/lib/cluster/provisioned").write_text("")
    root.run([*APT, "purge", pkg.name])
    for path in pkg.conffiles:
        if path not in pkg.displaced:
            assert not root.file(path).exists(), path
    assert not root.file("/etc/cluster").exists()
    assert not root.file("/var/lib/cluster").exists()
    assert not root.file("/usr/lib/cluster-agent").exists()
    assert pkg.firstboot_unit not in wants_links(root)
    assert "haclient" not in root.run(["dpkg-statoverride", "--list"]).stdout
    assert not root.run(["dpkg-divert", "--list", "pbx-ha-cluster"]).stdout.strip()
    assert root.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", "heartbeat"]).stdout.startswith("ii")


def test_apt_install_from_repo(root: Root, pkg: Package, built: dict[str, Path], tmp_path: Path) -> None:
    repo = build_repo([built["deb"], built["rpm"]], tmp_path / "repo")
    assert (repo / "apt" / "Packages.gz").is_file() and (repo / "apt" / "Release").is_file()
    assert (repo / "yum" / "repodata" / "repomd.xml").is_file()
    shutil.copytree(repo / "apt", root.file("/srv/repo"))
    root.file("/etc/apt/sources.list.d/cluster.list").write_text("deb [trusted=yes] file:/srv/repo ./\n")
    root.run(["apt-get", "update", "-q"])
    root.run([*APT, "install", pkg.name])
    assert_installed(root, pkg)


def test_rpm_install_in_root(tarball: Path, tmp_path: Path, pkg: Package, built: dict[str, Path]) -> None:
    # rpm runs the scriptlets chrooted into --root: the Debian root gives them a
    # shell and systemctl. --nodeps: heartbeat and friends are Debian packages here.
    with Root(tarball, tmp_path) as root:
        run(["rpm", "--root", root.path, "--initdb"])
        proc = run(["rpm", "-i", "--root", root.path, "--nodeps", built["rpm"]], check=False)
        assert proc.returncode == 0 and "scriptlet failed" not in proc.stdout, proc.stdout
        for f in pkg.files:
            path = f"{f.path}.{pkg.name}" if str(f.path) in pkg.displaced else str(f.path)
            st = root.file(path).lstat()
            assert stat.S_IMODE(st.st_mode) == f.mode, f.path
        assert root.file(pkg.displaced[0]).read_bytes() == root.file(f"{pkg.displaced[0]}.{pkg.name}").read_bytes()
        assert wants_links(root).get(pkg.firstboot_unit) == "multi-user.target.wants"
        proc = run(["rpm", "-e", "--root", root.path, "--nodeps", pkg.name], check=False)
        assert proc.returncode == 0, proc.stdout
        assert pkg.firstboot_unit not in wants_links(root)
