"""builder itself as a Debian package (stdeb), installed by apt into Debian 12 and 13 roots. Slow.

Debian 13 runs it on Debian's python3-pydantic; Debian 12 (pydantic 1.10 only) on the
pydantic 2 the package carries in /usr/lib/python3-builder/vendor (scripts/build-stdeb.sh).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from builder.mirror import mirror_for
from tests.conftest import REPO
from tests.packaging.roots import Root, apt_cache_dir, root_tarball

pytestmark = pytest.mark.slow
APT = ["apt-get", "-y", "-q", "--no-install-recommends"]
VENDOR = "/usr/lib/python3-builder/vendor/"
DEBIAN_DIST = "/usr/lib/python3/dist-packages/"

# Runs the installed /usr/bin/builder in this interpreter (its sys.path logic included),
# renders a profile with it, then reports which pydantic and typing_extensions it used.
PROBE = """\
import runpy, sys
sys.argv = ["builder", "render", "--profile", "pbx-ha", "--out", "/tmp/probe"]
try:
    runpy.run_path("/usr/bin/builder", run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
import pydantic, pydantic_core._pydantic_core as core, typing_extensions
print("PROBE", pydantic.VERSION, pydantic.__file__, core.__file__, typing_extensions.__file__)
"""


@pytest.fixture(scope="module")
def stdeb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stdeb")
    proc = subprocess.run([str(REPO / "scripts/build-stdeb.sh"), str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (deb,) = out.glob("python3-builder_*.deb")
    return deb


def _field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()


def test_stdeb_control_and_contents(stdeb: Path, tmp_path: Path) -> None:
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    assert stdeb.name.endswith(f"_{arch}.deb")
    assert _field(stdeb, "Architecture") == arch  # it carries a compiled pydantic_core
    depends = [d.strip() for d in _field(stdeb, "Depends").split(",")]
    # Debian's pydantic 2 where python3 is 3.12 or newer (Debian 13), nothing on Debian 12.
    assert "python3-pydantic (>= 2.5) | python3 (<< 3.12)" in depends
    assert not [d for d in depends if d.startswith("python3-pydantic") and "|" not in d]
    for dep in ("python3-yaml (>= 6)", "python3-jinja2 (>= 3.1)", "python3-rich (>= 13)"):
        assert dep in depends
    listing = subprocess.run(["dpkg-deb", "-c", str(stdeb)], capture_output=True, text=True, check=True).stdout
    assert f".{VENDOR}pydantic/__init__.py" in listing
    assert f".{VENDOR}pydantic_core/_pydantic_core.cpython-311-" in listing
    assert f".{VENDOR}typing_extensions.py" in listing
    assert f".{DEBIAN_DIST}builder/cli.py" in listing
    subprocess.run(["dpkg-deb", "-x", str(stdeb), str(tmp_path)], check=True)
    # /usr/bin/builder is the wrapper (scripts/stdeb/builder), not setuptools' entry-point script
    assert (tmp_path / "usr/bin/builder").read_text() == (REPO / "scripts/stdeb/builder").read_text()
    copyright = (tmp_path / "usr/share/doc/python3-builder/copyright").read_text()
    assert "Files: vendor/pydantic/*" in copyright and "License: MIT" in copyright


def test_stdeb_lintian(stdeb: Path) -> None:
    # Every remaining tag is overridden with its reason in scripts/stdeb/lintian-overrides.
    proc = subprocess.run(["lintian", str(stdeb)], capture_output=True, text=True)
    tags = [ln for ln in proc.stdout.splitlines() if ln[:2] in ("E:", "W:")]
    assert proc.returncode == 0 and not tags, proc.stdout + proc.stderr


def _install(root: Root, deb: Path) -> None:
    root.run(["apt-get", "update", "-q"])
    root.run([*APT, "install", root.copy_in(deb, "/tmp/" + deb.name)])


def _run(root: Root) -> tuple[str, str, str, str]:
    """builder --help and builder render work; returns the probe's (pydantic version,
    pydantic file, pydantic_core's extension file, typing_extensions file)."""
    assert "render" in root.run(["builder", "--help"]).stdout
    root.run(["builder", "render", "--profile", "pbx-ha", "--out", "/tmp/x"])
    assert root.file("/tmp/x/etc/ha.d/ha.cf").is_file()
    assert "resource" in root.file("/tmp/x/etc/drbd.d/r0.res").read_text()
    return _probe(root)


def _probe(root: Root) -> tuple[str, str, str, str]:
    out = root.run(["python3", "-c", PROBE]).stdout
    (line,) = [ln for ln in out.splitlines() if ln.startswith("PROBE ")]
    assert root.file("/tmp/probe/etc/ha.d/ha.cf").is_file()
    version, pydantic, core, typing_extensions = line.split()[1:]
    return version, pydantic, core, typing_extensions


def _purge(root: Root) -> None:
    root.run(["apt-get", "-y", "-q", "purge", "python3-builder"])
    assert not root.file("/usr/bin/builder").exists()
    assert not root.file("/usr/lib/python3-builder").exists()  # byte-compiled files included


def test_stdeb_installs_on_trixie_with_debians_pydantic(stdeb: Path, tmp_path: Path) -> None:
    with Root(root_tarball("trixie", mirror_for(None)), tmp_path, apt_cache=apt_cache_dir("trixie")) as root:
        _install(root, stdeb)
        version, pydantic, core, typing_extensions = _run(root)
        # apt chose the first alternative: Debian's pydantic 2, and builder runs on it.
        assert root.run(["dpkg-query", "-W", "-f", "${Status}", "python3-pydantic"]).stdout == "install ok installed"
        assert version.startswith("2.")
        assert pydantic == DEBIAN_DIST + "pydantic/__init__.py"
        assert core.startswith(DEBIAN_DIST + "pydantic_core/_pydantic_core.cpython-313-")
        assert typing_extensions == DEBIAN_DIST + "typing_extensions.py"
        # The vendored copy is never compiled nor imported here.
        assert not list(root.file(VENDOR).rglob("*.pyc"))
        _purge(root)


def test_stdeb_installs_on_bookworm_with_vendored_pydantic(stdeb: Path, tmp_path: Path) -> None:
    with Root(root_tarball("bookworm", mirror_for(None)), tmp_path, apt_cache=apt_cache_dir("bookworm")) as root:
        _install(root, stdeb)
        # postinst byte-compiled the vendored modules for python3.11
        assert root.file(VENDOR + "pydantic/__pycache__/main.cpython-311.pyc").is_file()
        version, pydantic, core, typing_extensions = _run(root)
        # No pydantic from Debian: the package's own pydantic 2 is used.
        assert not root.file(DEBIAN_DIST + "pydantic").exists()
        assert version.startswith("2.")
        assert pydantic == VENDOR + "pydantic/__init__.py"
        assert core.startswith(VENDOR + "pydantic_core/_pydantic_core.cpython-311-")
        assert typing_extensions == VENDOR + "typing_extensions.py"

        # Debian 12's pydantic 1.10 (and typing_extensions 4.4) installed for other programs
        # must not shadow the vendored ones, and builder must not change what they import.
        root.run([*APT, "install", "python3-pydantic"])
        assert root.run(["python3", "-c", "import pydantic; print(pydantic.VERSION)"]).stdout.startswith("1.")
        assert root.file(DEBIAN_DIST + "typing_extensions.py").is_file()
        root.run(["builder", "render", "--profile", "pbx-ha", "--out", "/tmp/x2"])
        assert root.file("/tmp/x2/etc/drbd.d/r0.res").is_file()
        version, pydantic, _, typing_extensions = _probe(root)
        assert version.startswith("2.")
        assert pydantic == VENDOR + "pydantic/__init__.py"
        assert typing_extensions == VENDOR + "typing_extensions.py"
        _purge(root)
