"""The site's LAN services that the nodes are configured to use: DNS and NTP.

A real site gives each node a DNS server and a time source, and the profile
names them (public.dns, time_servers). The lab plays that site on the public
bridge with real daemons: dnsmasq answers the time servers' names with the
site's own address (and NXDOMAIN for everything else: there is no upstream),
and chronyd serves the host's clock without touching it (-x). The nodes' chrony
then synchronises as on a real LAN, and the scenario checks that it did.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, ip_address
from pathlib import Path

from builder.errors import BuilderError
from builder.lab.net import LabNetwork
from builder.profile.model import Profile

# Debian's chrony package would replace the host's own time daemon, so
# scripts/setup.sh unpacks its chronyd here instead (like mkosi on Debian 12).
CHRONYD = Path(os.environ.get("BUILDER_CHRONYD", "/var/lib/builder/chrony/usr/sbin/chronyd"))
DNSMASQ = Path("/usr/sbin/dnsmasq")


@dataclass(frozen=True)
class SitePlan:
    """What the lab must play for this profile; empty when the nodes use no LAN server."""

    dns: IPv4Interface | None  # the nodes' first DNS server on the public LAN
    names: tuple[str, ...]  # time server names dnsmasq answers with the site's address
    time_addresses: tuple[IPv4Interface, ...]  # where chronyd must answer (it listens on all)

    @property
    def addresses(self) -> tuple[IPv4Interface, ...]:
        return tuple(dict.fromkeys([*([self.dns] if self.dns else []), *self.time_addresses]))

    @property
    def serves_time(self) -> bool:
        return bool(self.time_addresses)


def site_plan(profile: Profile) -> SitePlan:
    net = profile.vip.address.network
    on_lan = [a for n in profile.nodes for a in n.public.dns if a in net]
    dns = IPv4Interface(f"{on_lan[0]}/{net.prefixlen}") if on_lan else None
    names: list[str] = []
    time_addresses: list[IPv4Interface] = []
    for server in profile.time_servers:
        try:
            addr = ip_address(server)
        except ValueError:  # a name: the site's DNS sends it to the site
            if dns:
                names.append(server)
                time_addresses.append(dns)
            continue
        if isinstance(addr, IPv4Address) and addr in net:
            time_addresses.append(IPv4Interface(f"{addr}/{net.prefixlen}"))
    return SitePlan(dns, tuple(names), tuple(dict.fromkeys(time_addresses)))


CHRONY_CONF = """\
# The lab's site time server: serves the host's clock (chronyd -x never sets it).
local stratum 3
allow
cmdport 0
pidfile {workdir}/chronyd.pid
"""


@dataclass
class Site:
    net: LabNetwork
    plan: SitePlan
    workdir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def argvs(self) -> list[list[str]]:
        out = []
        if self.plan.dns:
            out.append([str(DNSMASQ), "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                        "--user=root", f"--pid-file={self.workdir / 'dnsmasq.pid'}", "--bind-interfaces",
                        f"--listen-address={self.plan.dns.ip}", "--log-queries", "--log-facility=-",
                        "--address=/#/", *(f"--address=/{n}/{self.plan.dns.ip}" for n in self.plan.names)])
        if self.plan.serves_time:
            out.append([str(CHRONYD), "-x", "-d", "-u", "root", "-f", str(self.workdir / "chrony.conf")])
        return out

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "chrony.conf").write_text(CHRONY_CONF.format(workdir=self.workdir))
        argvs = self.argvs()
        for argv in argvs:  # all found before any starts
            if not Path(argv[0]).exists():
                raise BuilderError(f"the lab's site services need {argv[0]}", hint="run `bash scripts/setup.sh` as root")
        for argv in argvs:
            with open(self.workdir / f"{Path(argv[0]).name}.log", "wb") as log:
                self.procs.append(self.net.popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL))

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
        self.procs.clear()
