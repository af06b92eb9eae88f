"""The rendered staging tree of pbx-ha: golden files, modes, and the real tools' verdict."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from builder.cli import main
from builder.profile.load import load_profile
from builder.render import AGENT_DIR, render
from builder.staging import Tree
from tests.conftest import FAKE_SECRETS, REPO, pbx_ha_data, write_profile
from tests.golden import check_golden


@pytest.fixture(scope="module")
def tree() -> Tree:
    return render(load_profile("pbx-ha"), FAKE_SECRETS)


@pytest.fixture(scope="module")
def staged(tree: Tree, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("staged") / "root"
    tree.write_atomically(root)
    return root


def test_golden_pbx_ha(tree: Tree) -> None:
    # The agent's Python files are code, not configuration: they are tested on their own.
    actual = {
        f"{str(f.path).lstrip('/')}": f.data
        for f in tree
        if not str(f.path).startswith(AGENT_DIR)
    }
    actual["MODES"] = "".join(f"{f.mode:04o} {f.path}\n" for f in tree if not str(f.path).startswith(AGENT_DIR)).encode()
    check_golden(REPO / "tests" / "golden" / "render" / "pbx-ha", actual)


def test_secrets_are_root_only(staged: Path, tree: Tree) -> None:
    secret_files = {str(f.path) for f in tree if f.secret}
    assert secret_files == {"/etc/ha.d/authkeys", "/etc/drbd.d/r0.res", "/etc/msmtprc", "/usr/lib/cluster/setup/mariadb"}
    for path in secret_files:
        mode = stat.S_IMODE((staged / path.lstrip("/")).stat().st_mode)
        assert mode in (0o600, 0o700), (path, oct(mode))
    assert FAKE_SECRETS.heartbeat_key in (staged / "etc/ha.d/authkeys").read_text()
    assert FAKE_SECRETS.drbd_secret in (staged / "etc/drbd.d/r0.res").read_text()
    assert "auth off" in (staged / "etc/msmtprc").read_text()  # pbx-ha's LAN relay takes no login
    assert FAKE_SECRETS.db_password in (staged / "usr/lib/cluster/setup/mariadb").read_text()
    # ...and no secret anywhere else.
    for f in tree:
        if not f.secret:
            for value in FAKE_SECRETS.values():
                assert value.encode() not in f.data, f.path


def _drbd_conf(staged: Path) -> Path:
    conf = staged.parent / "drbd.conf"
    conf.write_text(f'include "{staged}/etc/drbd.d/global_common.conf";\ninclude "{staged}/etc/drbd.d/*.res";\n')
    return conf


@pytest.mark.parametrize("node", ["kava1", "kava2"])
def test_drbdadm_parses_the_config_per_node(staged: Path, node: str) -> None:
    # drbd-utils 9 ships two front ends: `drbdadm` picks its 8.4 one only when the
    # loaded kernel module is 8.4 (Debian's in-tree module is), and this build host
    # has none loaded. /usr/lib/drbd/drbdadm-84 is that 8.4 front end itself, the
    # very binary a node runs, so we call it directly. In private UTS and network
    # namespaces the host is named and addressed like the node, so drbdadm resolves
    # that node's `on` section and finds its replication address, as on the node.
    conf = _drbd_conf(staged)
    address = {"kava1": "10.1.1.1", "kava2": "10.1.1.2"}[node]
    adm = f"/usr/lib/drbd/drbdadm-84 -c {conf}"
    script = (f"hostname {node} && ip link set lo up && ip addr add {address}/24 dev lo && "
              f"{adm} sh-ll-dev r0 && {adm} sh-ip r0 && {adm} dump all")
    proc = subprocess.run(["unshare", "--uts", "--net", "sh", "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0 and _without_dopd_warning(proc.stderr) == "", proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "/dev/disk/by-partlabel/drbd-r0"
    assert lines[1] == address
    assert "cram-hmac-alg    sha256;" in proc.stdout
    assert "fencing          resource-only;" in proc.stdout


def _without_dopd_warning(stderr: str) -> str:
    """drbdadm warns while drbdsetup/drbdmeta lack dopd's setgid override; the
    cluster package sets it on the nodes (dpkg-statoverride), this host has none."""
    lines = stderr.splitlines()
    if "WARN:" not in lines:
        return stderr
    start = lines.index("WARN:")
    end = max(i for i, line in enumerate(lines) if "dpkg-statoverride --add --update root haclient" in line)
    return "\n".join(line for line in lines[:start] + lines[end + 1:] if line.strip())


def test_drbdadm_rejects_a_broken_config(staged: Path, tmp_path: Path) -> None:
    # The check above is only worth something if drbdadm-84 does reject bad input.
    broken = tmp_path / "root"
    shutil.copytree(staged, broken)
    res = broken / "etc/drbd.d/r0.res"
    res.write_text(res.read_text().replace("meta-disk internal;", "meta-disk;"))
    proc = subprocess.run(["/usr/lib/drbd/drbdadm-84", "-c", str(_drbd_conf(broken)), "dump", "r0"],
                          capture_output=True, text=True)
    assert proc.returncode != 0


def _verify_units(staged: Path) -> subprocess.CompletedProcess[str]:
    # systemd-analyze checks that ExecStart exists: show it the staged /usr/sbin
    # through a read-only overlay in a private mount namespace.
    units = sorted((staged / "usr/lib/systemd/system").glob("*.service"))
    script = (f"mount -t overlay overlay -o lowerdir={staged}/usr/sbin:/usr/sbin /usr/sbin && "
              f"SYSTEMD_UNIT_PATH={staged}/usr/lib/systemd/system: "
              f"systemd-analyze verify --man=no {' '.join(map(str, units))}")
    return subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True)


def test_systemd_analyze_verifies_every_unit(staged: Path) -> None:
    proc = _verify_units(staged)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_systemd_analyze_catches_a_bad_unit(staged: Path, tmp_path: Path) -> None:
    broken = tmp_path / "root"
    shutil.copytree(staged, broken)
    unit = broken / "usr/lib/systemd/system/cluster-firstboot.service"
    unit.write_text(unit.read_text().replace("ExecStart=/usr/sbin/clusterctl", "ExecStart=/usr/sbin/clusterctl-typo"))
    assert _verify_units(broken).returncode != 0


def test_shellcheck_every_script(staged: Path, tree: Tree) -> None:
    scripts = [staged / str(f.path).lstrip("/") for f in tree if f.data.startswith(b"#!/bin/sh")]
    assert len(scripts) >= 4  # clusterctl + one resource script per service
    proc = subprocess.run(["shellcheck", "--shell=sh", *map(str, scripts)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_cluster_json_is_the_documented_contract(tree: Tree) -> None:
    data = json.loads(tree.get("/etc/cluster/cluster.json").data)
    assert data["format"] == 1
    assert [n["name"] for n in data["nodes"]] == ["kava1", "kava2"]
    assert [n["preferred"] for n in data["nodes"]] == [True, False]
    assert data["vip"] == {"address": "192.168.0.105", "prefix": 24, "interface": "lan0"}
    assert data["drbd"]["backing"]["partlabel"] == "drbd-r0"
    assert [s["name"] for s in data["services"]] == ["mariadb", "kamailio", "apache2"]
    assert data["services"][1]["probe"] == {"udp_sip": 5060}


def test_haresources_order_and_agents(tree: Tree) -> None:
    line = [ln for ln in tree.get("/etc/ha.d/haresources").data.decode().splitlines() if not ln.startswith("#")]
    assert line == ["kava1 drbddisk::r0 Filesystem::/dev/drbd0::/replica::ext4 IPaddr2::192.168.0.105/24/lan0 "
                    "mariadb kamailio apache2 MailTo::ops@example.invalid::pbx-ha"]
    for agent in ("drbddisk", "Filesystem", "IPaddr2", "MailTo"):
        assert Path("/etc/ha.d/resource.d", agent).exists(), f"heartbeat ships no {agent}"


def test_ha_cf_daemons_exist_where_debian_ships_them(tree: Tree) -> None:
    text = tree.get("/etc/ha.d/ha.cf").data.decode()
    for line in text.splitlines():
        if line.startswith("respawn "):
            assert Path(line.split()[2]).is_file(), line
    fence = [ln for ln in tree.get("/etc/drbd.d/global_common.conf").data.decode().splitlines() if "fence-peer" in ln]
    assert len(fence) == 1  # defined once (the tutorial defined it twice)
    assert Path(fence[0].split('"')[1].split()[0]).is_file()


def test_render_replaces_output_atomically(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = write_profile(tmp_path, pbx_ha_data())
    out = tmp_path / "out"
    # An older render (builder replaces only a folder it made), with a file it no longer makes.
    assert main(["render", "--profile", str(profile), "--out", str(out)]) == 0
    (out / "stale").write_text("from an older render")
    assert main(["render", "--profile", str(profile), "--out", str(out)]) == 0
    assert not (out / "stale").exists()
    assert (out / "etc/ha.d/ha.cf").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.secrets", "cluster.yaml", "out"]


def test_bookworm_and_disk_backing_render(tmp_path: Path) -> None:
    data = pbx_ha_data()
    data["cluster"]["release"] = "bookworm"
    data["drbd"]["backing"] = {"kind": "disk", "disks": {"kava1": "/dev/vdb", "kava2": "/dev/sdb"}}
    data["heartbeat"]["media"] = "bcast"
    del data["alerts"]
    profile = load_profile(str(write_profile(tmp_path, data)))
    tree = render(profile, FAKE_SECRETS)
    paths = {str(f.path) for f in tree}
    assert "/usr/lib/repart.d/50-drbd-r0.conf" not in paths
    assert "/etc/msmtprc" not in paths
    assert 'disk      "/dev/sdb";' in tree.get("/etc/drbd.d/r0.res").data.decode()
    assert "bcast repl0" in tree.get("/etc/ha.d/ha.cf").data.decode()


def test_firstboot_is_not_ordered_before_what_it_starts(tree: Tree) -> None:
    # `clusterctl boot` runs `systemctl start drbd.service heartbeat.service` from
    # inside this unit: ordering it Before= them makes those jobs wait for the unit
    # that waits for them (a deadlock seen in the lab).
    unit = tree.get("/usr/lib/systemd/system/cluster-firstboot.service").data.decode()
    before = " ".join(line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("Before="))
    assert "drbd.service" not in before and "heartbeat.service" not in before
