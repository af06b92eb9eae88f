"""The cluster profile: every setting declared once, with type, default, bounds and help.

Validation of single values lives here (pydantic). Checks that relate several
fields (addresses in one subnet, timings that must be ordered, ...) live in
`checks.py`, in one place, so the error messages stay uniform.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from builder.profile.types import (
    AbsPath,
    CommandWord,
    DebPackage,
    Duration,
    Email,
    Host,
    HostName,
    IfName,
    Mac,
    MirrorUrl,
    PasswordHash,
    ResourceName,
    ResyncRate,
    RpmPackage,
    Seconds,
    Size,
    SmtpUser,
    SshKey,
    UnitName,
    Version,
)

# The interface name on the node when the profile gives only a MAC.
DEFAULT_IFNAME = {"public": "lan0", "replication": "repl0"}


def _with_prefix(value: object) -> object:
    # ipaddress reads "192.168.0.100" as a /32, and every subnet check would then blame another field.
    if isinstance(value, str) and "/" not in value:
        raise ValueError(f"{value!r} has no prefix: write it with the subnet's, e.g. {value}/24")
    return value


Cidr = Annotated[IPv4Interface, BeforeValidator(_with_prefix)]


def ifname(link: Link, kind: str) -> str:
    """A link's interface name on the node: the profile's, or ours when only a MAC is given."""
    return link.interface or DEFAULT_IFNAME[kind]


class Model(BaseModel):
    # extra="forbid" turns a typo in a key into an error instead of a silent default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cluster(Model):
    name: HostName = Field(description="Cluster name (a DNS label); names the package `<name>-cluster`.")
    stack: Literal["heartbeat"] = Field(
        "heartbeat",
        description="Cluster stack. `heartbeat` (haresources mode) is the only one so far.",
    )
    distribution: Literal["debian"] = Field("debian", description="Node distribution.")
    release: Literal["trixie", "bookworm"] = Field(
        "trixie", description="Debian release of the node image: trixie (13) or bookworm (12)."
    )
    version: Version = Field(
        "1.0",
        description="Version of the cluster package; builds append a build number so a rebuild upgrades.",
    )
    mirror: MirrorUrl | None = Field(
        None,
        description="Debian mirror URL for images and tests. Default: the first Debian mirror in the build host's apt sources.",
    )


class Link(Model):
    interface: IfName | None = Field(
        None,
        description="Interface name on the node. With `mac`, the node names the NIC so; without, it must be the kernel's name.",
    )
    mac: Mac | None = Field(None, description="MAC address of the NIC; also identifies the node at first boot.")
    address: Cidr = Field(description="Static address with prefix, e.g. 10.1.1.1/24.")


class PublicLink(Link):
    gateway: IPv4Address | None = Field(None, description="Default gateway on the public LAN.")
    dns: list[IPv4Address] = Field(default_factory=list, max_length=3, description="DNS servers (at most 3, resolv.conf's limit).")


class Node(Model):
    name: HostName = Field(description="Host name (`uname -n`); DRBD `on` sections and heartbeat `node` lines use it.")
    public: PublicLink = Field(description="The public LAN link: clients reach the VIP here.")
    replication: Link = Field(description="The back-to-back link for DRBD replication and heartbeat.")

    def ifname(self, kind: Literal["public", "replication"]) -> str:
        """The interface name on the node: the profile's, or ours when only a MAC is given."""
        return ifname(self.public if kind == "public" else self.replication, kind)


class Vip(Model):
    address: Cidr = Field(
        description="Virtual IP with prefix on the public LAN; heartbeat moves it to the active node."
    )


class Backing(Model):
    kind: Literal["partition", "disk"] = Field(
        "partition",
        description="`partition`: created at first boot in the disk's free space (systemd-repart); `disk`: a whole disk per node.",
    )
    size: Size = Field(
        1 << 30,
        ge=64 << 20,
        le=1 << 50,
        description="Size of the DRBD partition (kind=partition), e.g. 20G. At least 64M.",
    )
    disks: dict[HostName, AbsPath] = Field(
        default_factory=dict,
        description="kind=disk: node name -> whole disk, e.g. {kava1: /dev/disk/by-id/...}. Prefer stable /dev/disk/by-* names.",
    )


SB0 = Literal[
    "disconnect", "discard-younger-primary", "discard-older-primary",
    "discard-zero-changes", "discard-least-changes",
]
SB1 = Literal["disconnect", "consensus", "discard-secondary", "call-pri-lost-after-sb"]
SB2 = Literal["disconnect", "call-pri-lost-after-sb"]


class Drbd(Model):
    resource: ResourceName = Field("r0", description="DRBD resource name.")
    minor: int = Field(0, ge=0, le=255, description="Device minor: /dev/drbd<minor>.")
    port: int = Field(7788, ge=1024, le=65535, description="TCP port for replication.")
    protocol: Literal["A", "B", "C"] = Field("C", description="Replication protocol; C = synchronous (no acked write lost).")
    backing: Backing = Field(default_factory=Backing, description="Where the replicated data lives on each node.")
    filesystem: Literal["ext4", "xfs"] = Field("ext4", description="Filesystem made once on the DRBD device.")
    mount: AbsPath = Field("/replica", description="Mount point of the replicated filesystem.")
    resync_rate: ResyncRate = Field("100M",
                             description="Resync rate limit (bytes/s, DRBD units), e.g. 100M; not 0.")
    after_sb_0pri: SB0 = Field("discard-zero-changes", description="Split-brain policy with no primary.")
    after_sb_1pri: SB1 = Field("discard-secondary", description="Split-brain policy with one primary.")
    after_sb_2pri: SB2 = Field("disconnect", description="Split-brain policy with two primaries.")
    rr_conflict: Literal["disconnect", "call-pri-lost"] = Field("disconnect", description="Resync-role conflict policy.")
    on_io_error: Literal["detach", "pass_on", "call-local-io-error"] = Field(
        "detach", description="On a lower-level I/O error: detach keeps serving from the peer (diskless)."
    )
    fencing: Literal["resource-only", "dont-care"] = Field(
        "resource-only",
        description="resource-only: heartbeat's dopd outdates the peer before promotion, so stale data never goes primary.",
    )
    wfc_timeout: Seconds = Field(15_000, ge=0, le=86_400_000,
                                 description="drbd.service start: wait for the peer this long, whole seconds (0 = forever).")
    degr_wfc_timeout: Seconds = Field(60_000, ge=0, le=86_400_000,
                                      description="Same, when the cluster was degraded before the reboot.")
    peer_timeout: Seconds = Field(
        300_000,
        ge=10_000,
        le=86_400_000,
        description="First boot: how long the preferred node waits for its peer before going on alone.",
    )


    @property
    def partlabel(self) -> str:
        """The GPT label of the backing partition (kind=partition), which first boot finds it by."""
        return f"drbd-{self.resource}"

class Heartbeat(Model):
    keepalive: Duration = Field(500, ge=100, le=60_000, description="Interval between heartbeats.")
    warntime: Duration = Field(1_500, ge=200, le=600_000, description="Log a late heartbeat after this long.")
    deadtime: Duration = Field(3_000, ge=500, le=600_000,
                               description="Declare the peer dead after this long without heartbeats.")
    initdead: Duration = Field(30_000, ge=1_000, le=3_600_000,
                               description="At start, wait this long for the peer (boot jitter).")
    udpport: int = Field(694, ge=1, le=65535, description="UDP port of heartbeat packets.")
    media: Literal["ucast", "bcast"] = Field("ucast", description="How heartbeats travel on the replication link.")
    public_path: bool = Field(
        True,
        description="Also send heartbeats over the public link, so one cut cable is not a split brain.",
    )
    auto_failback: bool = Field(True, description="Move resources back to the preferred node when it returns.")
    ping: list[IPv4Address] = Field(
        default_factory=list,
        max_length=8,
        description="Ping nodes (e.g. the gateway): ipfail moves resources away from a node that lost them.",
    )


class Probe(Model):
    tcp: int | None = Field(None, ge=1, le=65535, description="Healthy when this TCP port accepts a connection.")
    udp_sip: int | None = Field(None, ge=1, le=65535, description="Healthy when a SIP OPTIONS on this UDP port gets a reply.")
    command: list[CommandWord] | None = Field(
        None, min_length=1, max_length=32, description="Healthy when this command (an argv, no shell) exits 0."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Probe:
        given = [k for k in ("tcp", "udp_sip", "command") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of tcp, udp_sip, command")
        return self


class Packages(Model):
    deb: list[DebPackage] = Field(default_factory=list, max_length=64, description="Debian package names.")
    rpm: list[RpmPackage] = Field(default_factory=list, max_length=64, description="RPM package names.")


class Service(Model):
    name: HostName = Field(description="Short name; heartbeat's resource script is /etc/ha.d/resource.d/<name>.")
    unit: UnitName = Field(description="The systemd unit heartbeat starts.")
    packages: Packages = Field(default_factory=Packages, description="Packages that provide the service.")
    state: list[AbsPath] = Field(
        default_factory=list,
        max_length=32,
        description="Paths moved once onto the replicated filesystem and left as symlinks.",
    )
    probe: Probe | None = Field(None, description="How the health check knows the service answers.")


class Smtp(Model):
    host: Host = Field(description="SMTP relay host name or IPv4 address.")
    port: int = Field(587, ge=1, le=65535, description="SMTP relay port.")
    starttls: bool = Field(True, description="Use STARTTLS.")
    tls_trust_file: AbsPath = Field(
        "/etc/ssl/certs/ca-certificates.crt", description="CA bundle that signs the relay's certificate."
    )
    user: SmtpUser | None = Field(
        None, description="SMTP user; the password is in the secrets file. Needs starttls: true (no password in clear text)."
    )


class Alerts(Model):
    recipients: list[Email] = Field(min_length=1, max_length=32, description="Who gets alert mail.")
    sender: Email = Field(description="From: address of alert mail.")
    smtp: Smtp = Field(description="The mail relay.")
    reminder: Seconds = Field(3_600_000, ge=60_000, le=7 * 86_400_000, description="Repeat a persisting problem this often.")


class Profile(Model):
    cluster: Cluster = Field(description="Cluster identity and target distribution.")
    nodes: list[Node] = Field(max_length=16, description="The nodes, in order of preference: the first is the master.")
    vip: Vip = Field(description="The virtual IP clients use.")
    drbd: Drbd = Field(default_factory=Drbd, description="The replicated disk.")
    heartbeat: Heartbeat = Field(default_factory=Heartbeat, description="Membership and failover timing.")
    services: list[Service] = Field(
        default_factory=list, max_length=32, description="Services heartbeat runs on the active node, in start order."
    )
    alerts: Alerts | None = Field(None, description="Email alerts; none when omitted.")
    time_servers: list[Host] = Field(
        default_factory=lambda: ["2.debian.pool.ntp.org"],
        max_length=16,
        description="NTP servers for chrony.",
    )
    packages: list[DebPackage] = Field(default_factory=list, max_length=256,
                                       description="Extra Debian packages for the image.")
    ssh_authorized_keys: list[SshKey] = Field(default_factory=list, max_length=64,
                                              description="SSH public keys for root.")
    root_password_hash: PasswordHash | None = Field(
        None,
        description="crypt(3) hash for root (`mkpasswd -m yescrypt`); root is locked when omitted.",
    )

    @property
    def preferred(self) -> Node:
        return self.nodes[0]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)
