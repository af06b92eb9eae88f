"""A small profile and staging tree, shaped like the real render of pbx-ha."""

from __future__ import annotations

from pathlib import PurePosixPath

from builder.profile.model import Profile
from builder.staging import StagedFile, Tree

PROFILE = {
    "cluster": {"name": "pbx-ha", "release": "bookworm", "version": "1.0"},
    "nodes": [
        {
            "name": "kava1",
            "public": {"interface": "lan0", "address": "192.168.0.100/24"},
            "replication": {"interface": "repl0", "address": "10.1.1.1/24"},
        },
        {
            "name": "kava2",
            "public": {"interface": "lan0", "address": "192.168.0.101/24"},
            "replication": {"interface": "repl0", "address": "10.1.1.2/24"},
        },
    ],
    "vip": {"address": "192.168.0.105/24"},
    "services": [
        {
            "name": "mariadb",
            "unit": "mariadb.service",
            "packages": {"deb": ["mariadb-server"], "rpm": ["mariadb-server"]},
        },
        {
            "name": "kamailio",
            "unit": "kamailio.service",
            "packages": {"deb": ["kamailio", "kamailio-mysql-modules"], "rpm": ["kamailio", "kamailio-mysql"]},
        },
        {"name": "apache2", "unit": "apache2.service", "packages": {"deb": ["apache2"], "rpm": ["httpd"]}},
    ],
}

UNIT = b"""[Unit]
Description=Provision this cluster node (first boot)
After=network-online.target
Wants=network-online.target
ConditionPathExists=!/var/lib/cluster/provisioned

[Service]
Type=oneshot
ExecStart=/usr/sbin/clusterctl provision
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
"""

CLUSTERCTL = b"""#!/bin/sh
# node agent entry point
PYTHONPATH=/usr/lib/cluster-agent exec python3 -m builder.node "$@"
"""


def profile() -> Profile:
    return Profile.model_validate(PROFILE)


def tree() -> Tree:
    def f(path: str, data: bytes, mode: int = 0o644, secret: bool = False) -> StagedFile:
        return StagedFile(PurePosixPath(path), data, mode, secret)

    return Tree(
        (
            f("/etc/drbd.d/global_common.conf", b"global { usage-count no; }\n"),
            f("/etc/drbd.d/r0.res", b'resource r0 { net { shared-secret "x"; } }\n', 0o600, True),
            f("/etc/ha.d/ha.cf", b"node kava1\nnode kava2\n"),
            f("/etc/ha.d/haresources", b"kava1 drbddisk::r0 IPaddr2::192.168.0.105/24\n"),
            f("/etc/ha.d/authkeys", b"auth 1\n1 sha1 secret\n", 0o600, True),
            f("/etc/ha.d/resource.d/mariadb", b"#!/bin/sh\nexit 0\n", 0o755),
            f("/etc/cluster/cluster.json", b'{"format": 1}\n'),
            f("/etc/cluster/msmtprc", b"account default\n", 0o600, True),
            f("/etc/cron.d/cluster-health", b"*/5 * * * * root /usr/sbin/clusterctl health >/dev/null 2>&1\n"),
            f("/usr/lib/systemd/system/cluster-firstboot.service", UNIT),
            f(
                "/usr/lib/systemd/system-preset/50-pbx-ha.preset",
                b"enable cluster-firstboot.service\ndisable heartbeat.service\n",
            ),
            f("/usr/sbin/clusterctl", CLUSTERCTL, 0o755),
            f("/usr/lib/cluster-agent/builder/__init__.py", b'"""builder"""\n'),
            f("/usr/lib/cluster-agent/builder/node/__init__.py", b'"""node agent"""\n'),
            f("/usr/lib/cluster-agent/builder/node/__main__.py", b"print('hello')\n"),
        )
    )
