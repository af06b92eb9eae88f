"""The rendered mkosi configuration, against golden files (tests/golden/image/<case>/).

Update the golden files after an intended change:
    BUILDER_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/image/test_render.py
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from builder import mirror as apt_sources
from builder.errors import InputError
from builder.image.config import LocalDeb, image_spec, read_deb, render, resolve_mirrors, snapshot
from tests.golden import check_golden
from tests.image.helpers import FAKE_MIRROR, TEST_PACKAGE, make_profile, make_test_deb

GOLDEN = Path(__file__).parents[1] / "golden" / "image"
PBX_SERVICES = [
    {"name": "db", "unit": "mariadb.service", "packages": {"deb": ["mariadb-server"]}},
    {"name": "sip", "unit": "kamailio.service", "packages": {"deb": ["kamailio", "kamailio-mysql-modules"]}},
    {"name": "web", "unit": "apache2.service", "packages": {"deb": ["apache2"]}},
]
FAKE_HASH = "$y$j9T$notarealsalt$notarealhashnotarealhashnotarealhash0000000"

CASES = {
    "trixie-pbx": dict(
        release="trixie",
        node=None,
        cluster={"name": "pbx", "release": "trixie", "mirror": FAKE_MIRROR},
        services=PBX_SERVICES,
        packages=["sipsak", "tcpdump"],
    ),
    "bookworm-node": dict(
        release="bookworm",
        node="beta",
        cluster={"name": "pbx", "release": "bookworm", "mirror": FAKE_MIRROR + "/"},
        services=PBX_SERVICES[:1],
        drbd={"filesystem": "xfs"},
        root_password_hash=FAKE_HASH,
    ),
}


def _render_folder(tmp_path: Path, case: str) -> Path:
    args = dict(CASES[case])
    release, node = args.pop("release"), args.pop("node")
    profile = make_profile(str(release), **args)
    deb = LocalDeb(tmp_path / "x.deb", TEST_PACKAGE, "1.0")
    deb.path.write_bytes(b"!<arch>\n")
    spec = image_spec(profile, [deb], node=node if isinstance(node, str) else None)
    return render(spec, tmp_path / "cfg", [deb], tools_tree=True)


def _render(tmp_path: Path, case: str) -> str:
    return snapshot(_render_folder(tmp_path, case))


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_config_matches_golden(tmp_path: Path, case: str) -> None:
    folder = _render_folder(tmp_path, case)
    actual: dict[str, bytes] = {}
    modes = []
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        modes.append(f"{p.stat().st_mode & 0o7777:04o} {rel}{'/' if p.is_dir() else ''}\n")
        if p.is_file() and p.suffix != ".deb":
            actual[rel] = p.read_bytes()
    actual["MODES"] = "".join(modes).encode()
    check_golden(GOLDEN / case, actual)


def test_trixie_gets_repart_and_units_are_disabled(tmp_path: Path) -> None:
    text = _render(tmp_path, "trixie-pbx")
    assert "        systemd-repart\n" in text
    for unit in ("heartbeat", "logd", "drbd", "mariadb", "kamailio", "apache2", "systemd-networkd-wait-online"):
        assert f"disable {unit}.service\n" in text
    assert "enable systemd-networkd.service\n" in text
    assert "SectorSize=512\n" in text
    assert "console=ttyS0" in text
    assert "cluster.node=" not in text  # one image for both nodes
    assert "mkosi.rootpw" not in text
    assert "usermod -p '*' root" in text
    assert "Suites: trixie trixie-updates\n" in text and "Suites: trixie-security\n" in text


def test_bookworm_node_variant(tmp_path: Path) -> None:
    text = _render(tmp_path, "bookworm-node")
    assert "        systemd-repart\n" not in text
    assert "        xfsprogs\n" in text
    assert "cluster.node=beta" in text
    assert "Output=pbx-beta\n" in text
    assert "=== mkosi.rootpw (0600)\nhashed:" + FAKE_HASH in text
    assert "=== extra/root/ (0700)" in text and "=== extra/root/.ssh/authorized_keys (0600)" in text
    # the tools tree is trixie whatever the image release
    assert "ToolsTreeRelease=trixie\n" in text
    assert "URIs: " + FAKE_MIRROR + "\n" in text  # trailing slash dropped


def test_no_mirror_hostname_in_the_templates() -> None:
    # Mirrors come from the profile or the host's apt sources only: no URL is written into
    # the image templates or the image code (the one in config.py is a hint's placeholder).
    repo = Path(__file__).parents[2]
    for root in (repo / "images", repo / "builder" / "image"):
        for p in root.rglob("*"):
            if p.is_file() and p.suffix in (".j2", ".py", ".conf", ".sh"):
                urls = re.findall(r"https?://[^\s\"'<]+", p.read_text())
                assert not urls, (p, urls)


def test_unknown_node_is_bad_input() -> None:
    with pytest.raises(InputError, match="no such node"):
        image_spec(make_profile(cluster={"name": "x", "mirror": FAKE_MIRROR}), node="gamma")


def test_deb_without_section_is_rejected(tmp_path: Path) -> None:
    deb = make_test_deb(tmp_path)
    assert read_deb(deb).package == TEST_PACKAGE
    bad = tmp_path / "pkg-1.0/DEBIAN/control"
    bad.write_text("\n".join(line for line in bad.read_text().splitlines() if "Section" not in line) + "\n")
    out = tmp_path / "bad.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(bad.parents[1]), str(out)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(InputError, match="Section"):
        read_deb(out)


SOURCES = {
    "etc/apt/sources.list": "# nothing\n",
    "etc/apt/sources.list.d/google.list": "deb https://packages.example.com/apt cloud-sdk-bookworm main\n",
    "etc/apt/sources.list.d/node.sources": (
        "Types: deb\nURIs: https://node.example.com/node_20.x\nSuites: nodistro\nComponents: main\n"
    ),
    "etc/apt/sources.list.d/disabled.sources.off": "Types: deb\nURIs: http://wrong.example/debian\n",
    "etc/apt/sources.list.d/z-debian.sources": (
        "Types: deb deb-src\n# comment\nURIs: http://m.example/debian-security/\nSuites: bookworm-security\n"
        "Components: main\n\nTypes: deb\nURIs: http://m.example/debian/\n"
        "Suites: bookworm\n bookworm-updates\nComponents: main contrib\n"
    ),
}


def test_host_mirror_skips_third_party_and_security(tmp_path: Path) -> None:
    for rel, text in SOURCES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    sources = apt_sources.host_sources(tmp_path)
    assert apt_sources.debian_mirror(sources) == "http://m.example/debian"
    assert apt_sources.security_mirror(sources) == "http://m.example/debian-security"
    profile = make_profile()
    assert resolve_mirrors(profile, tmp_path) == ("http://m.example/debian", "http://m.example/debian-security")


def test_one_line_sources_list(tmp_path: Path) -> None:
    (tmp_path / "etc/apt").mkdir(parents=True)
    (tmp_path / "etc/apt/sources.list").write_text(
        "deb-src http://src.example/debian trixie main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian trixie main # c\n"
        "deb http://m.example/debian-security trixie-security main\n"
    )
    sources = apt_sources.host_sources(tmp_path)
    assert apt_sources.debian_mirror(sources) == "http://m.example/debian"
    assert apt_sources.security_mirror(sources) == "http://m.example/debian-security"


def test_no_mirror_anywhere_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no Debian mirror"):
        resolve_mirrors(make_profile(), tmp_path)
