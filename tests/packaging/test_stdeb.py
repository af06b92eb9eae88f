"""builder itself as a Debian package (stdeb), installed by apt into Debian roots. Slow."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from builder.mirror import mirror_for
from builder.packaging.roots import Root, apt_cache_dir, root_tarball
from tests.conftest import REPO

pytestmark = pytest.mark.slow
APT = ["apt-get", "-y", "-q", "--no-install-recommends"]


@pytest.fixture(scope="module")
def stdeb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stdeb")
    proc = subprocess.run([str(REPO / "scripts/build-stdeb.sh"), str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (deb,) = out.glob("python3-builder_*_all.deb")
    return deb


def test_stdeb_installs_on_trixie_and_runs(stdeb: Path, tmp_path: Path) -> None:
    with Root(root_tarball("trixie", mirror_for(None)), tmp_path, apt_cache=apt_cache_dir("trixie")) as root:
        root.run(["apt-get", "update", "-q"])
        root.run([*APT, "install", root.copy_in(stdeb, "/tmp/" + stdeb.name)])
        assert "render" in root.run(["builder", "--help"]).stdout
        root.run(["builder", "render", "--profile", "pbx-ha", "--out", "/tmp/x"])
        assert root.file("/tmp/x/etc/ha.d/ha.cf").is_file()


def test_stdeb_is_refused_on_bookworm(stdeb: Path, tmp_path: Path) -> None:
    # bookworm has python3-pydantic 1.10: builder's pydantic v2 code cannot run there,
    # and the Depends says so instead of installing something broken.
    with Root(root_tarball("bookworm", mirror_for(None), include=["systemd"]), tmp_path) as root:
        root.run(["apt-get", "update", "-q"])
        proc = root.run([*APT, "install", root.copy_in(stdeb, "/tmp/" + stdeb.name)], check=False)
        assert proc.returncode != 0
        assert "python3-pydantic (>= 2.5)" in proc.stdout
