"""The .network files we write, checked by the real systemd-networkd.

`systemd-analyze verify` does not read .network files, and this host has no
systemd as PID 1. So the real /lib/systemd/systemd-networkd is started inside
private network + mount namespaces (nothing of the host's network is touched),
with our files bind-mounted over /etc/systemd/network, a read-only sysfs of the
namespace (networkd then does not wait for udev), and veth links named like the
profile's NICs. It must load both files without a warning and configure them.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from builder.node import host
from builder.node.config import Cluster
from builder.node.context import Ctx

from .fakes import World

NETWORKD = "/lib/systemd/systemd-networkd"
MAN = "/usr/share/man/man5/systemd.network.5.gz"

SCRIPT = """\
set -e
mount -t tmpfs tmpfs /run
mount -t sysfs -o ro sysfs /sys
mount --bind {net} /etc/systemd/network
mount -t tmpfs tmpfs /lib/systemd/network
ip link set lo up
ip link add lan0 type veth peer name lanpeer
ip link set lanpeer up
ip link set lan0 up
# heartbeat holds the VIP when networkd (re)starts: it must stay
ip addr add 192.168.0.105/24 dev lan0
# repl0's peer end stays down: no carrier, as with a back-to-back cable and the peer off
ip link add repl0 type veth peer name replpeer
SYSTEMD_LOG_LEVEL=debug SYSTEMD_LOG_TARGET=console {networkd} 2>{log} &
pid=$!
for i in $(seq 1 100); do
    if ip -o addr show repl0 | grep -q 10.1.1.1/24 && ip route | grep -q '^default'; then
        break
    fi
    sleep 0.1
done
sleep 0.5
echo "=== addr"; ip -o addr
echo "=== route"; ip route
kill $pid; wait $pid || true
"""


@pytest.fixture
def network_files(world: World, ctx: Ctx, cluster: Cluster) -> Path:
    host.apply(ctx, cluster, cluster.node("kava1"))
    return world.root / "etc/systemd/network"


def test_real_networkd_accepts_and_applies_our_files(network_files: Path, tmp_path: Path) -> None:
    net = tmp_path / "network"
    shutil.copytree(network_files, net)
    # A control file: proves networkd really parses this directory and reports bad keys.
    (net / "90-control.network").write_text(
        "[Match]\nName=nosuchnic\n\n[Network]\nNoSuchSetting=1\n")
    log = tmp_path / "networkd.log"
    script = tmp_path / "run.sh"
    script.write_text(SCRIPT.format(net=net, networkd=NETWORKD, log=log))
    r = subprocess.run(["unshare", "-n", "-m", "--propagation", "private", "sh", str(script)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text = log.read_text()
    assert re.search(r"90-control.network:\d+: Unknown key 'NoSuchSetting'", text), text[-3000:]
    ours = [line for line in text.splitlines() if "50-cluster-" in line]
    complaints = [line for line in ours
                  if re.search(r"Unknown|Failed|Invalid|ignoring|not supported", line)]
    assert complaints == []
    assert "lan0: Configuring with /etc/systemd/network/50-cluster-lan0.network." in text
    assert "repl0: Configuring with /etc/systemd/network/50-cluster-repl0.network." in text
    addr, route = r.stdout.split("=== route")
    assert re.search(r"lan0\s+inet 192\.168\.0\.100/24", addr)
    assert re.search(r"repl0\s+inet 10\.1\.1\.1/24", addr), "no address without carrier"
    assert re.search(r"lan0\s+inet 192\.168\.0\.105/24", addr), "networkd dropped the VIP"
    assert "default via 192.168.0.1 dev lan0" in route


def documented_keys() -> set[str]:
    with gzip.open(MAN, "rt", errors="replace") as f:
        text = f.read()
    return set(re.findall(r"\\fI([A-Z][A-Za-z0-9]+)=\\fR", text))


def test_keys_are_documented_and_file_parses_strictly(network_files: Path) -> None:
    import configparser

    keys = documented_keys()
    assert {"Name", "Address", "Gateway", "DNS"} <= keys
    for f in sorted(network_files.glob("50-cluster-*.network")):
        p = configparser.ConfigParser(strict=True, interpolation=None)
        p.optionxform = str  # type: ignore[assignment,method-assign]
        p.read_string(f.read_text())
        assert set(p.sections()) == {"Match", "Network"}
        for section in p.sections():
            for key in p[section]:
                assert key in keys, f"{f.name}: [{section}] {key} is not in systemd.network(5)"


def test_the_vip_is_never_in_network_files(network_files: Path) -> None:
    for f in network_files.glob("*.network"):
        assert "192.168.0.105" not in f.read_text()
