"""Which node of cluster.json is this machine?

Sources in order; the first that names a node decides, and a source that names
something that is not a node stops everything (a wrong credential must not fall
through to a guess):
  1. systemd credential `cluster.node`: $CREDENTIALS_DIRECTORY, /run/credentials/@system,
     SMBIOS type 11 OEM strings (parsed here: systemd 252 on Debian 12 has no
     @system directory), `systemd.set_credential=cluster.node:NAME` on the kernel
     command line;
  2. `cluster.node=NAME` on the kernel command line;
  3. a NIC MAC address listed in cluster.json;
  4. the current hostname.
"""

from __future__ import annotations

import base64
import binascii
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from builder.node.config import Cluster
from builder.node.context import Ctx
from builder.node.errors import IdentityError

CREDENTIAL = "cluster.node"


@dataclass
class Identity:
    name: str
    source: str
    tried: list[tuple[str, str]] = field(default_factory=list)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except (FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError):
        return None


def _cmdline(ctx: Ctx) -> list[str]:
    text = _read(ctx.path("/proc/cmdline")) or ""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def smbios_credentials(raw: bytes) -> dict[str, str]:
    """Credentials in one SMBIOS type 11 (OEM strings) structure, as systemd reads them.

    Layout: type (1 byte, 11), header length, handle (2), string count, then the
    NUL-terminated strings. Accepts `io.systemd.credential:NAME=VALUE` and
    `io.systemd.credential.binary:NAME=BASE64`.
    """
    found: dict[str, str] = {}
    if len(raw) < 5 or raw[0] != 11:
        return found
    strings = raw[raw[1] :].split(b"\0")[: raw[4]]
    for s in strings:
        text = s.decode("utf-8", "replace")
        for prefix, binary in (("io.systemd.credential:", False),
                               ("io.systemd.credential.binary:", True)):
            if text.startswith(prefix) and "=" in text:
                name, _, value = text[len(prefix) :].partition("=")
                if binary:
                    try:
                        value = base64.b64decode(value, validate=True).decode("utf-8", "replace")
                    except (binascii.Error, ValueError):
                        continue
                found[name] = value.strip()
    return found


def _from_credential(ctx: Ctx, tried: list[tuple[str, str]]) -> tuple[str, str] | None:
    return read_credential(ctx, CREDENTIAL, tried)


def read_credential(ctx: Ctx, name: str, tried: list[tuple[str, str]] | None = None) -> tuple[str, str] | None:
    """A systemd credential, wherever this systemd version put it: (value, where) or None."""
    if tried is None:
        tried = []
    creds_dir = ctx.env.get("CREDENTIALS_DIRECTORY")
    if creds_dir:
        where = f"$CREDENTIALS_DIRECTORY/{name}"
        value = _read(ctx.path(creds_dir) / name)
        tried.append((where, repr(value) if value else "absent"))
        if value:
            return value, where
    else:
        tried.append(("$CREDENTIALS_DIRECTORY", "not set"))

    where = f"/run/credentials/@system/{name}"
    value = _read(ctx.path(where))
    tried.append((where, repr(value) if value else "absent"))
    if value:
        return value, where

    entries = sorted(ctx.path("/sys/firmware/dmi/entries").glob("11-*/raw"))
    for raw_path in entries:
        try:
            raw = raw_path.read_bytes()
        except OSError:
            continue
        value = smbios_credentials(raw).get(name)
        if value:
            where = f"SMBIOS type 11 ({raw_path.parent.name})"
            tried.append((where, repr(value)))
            return value, where
    tried.append(("SMBIOS type 11 OEM strings", f"no {name} in {len(entries)} entries"))

    prefix = f"systemd.set_credential={name}:"
    for arg in _cmdline(ctx):
        if arg.startswith(prefix) and arg[len(prefix) :]:
            tried.append(("kernel command line systemd.set_credential", repr(arg[len(prefix) :])))
            return arg[len(prefix) :].strip(), "kernel command line systemd.set_credential"
    tried.append(("kernel command line systemd.set_credential", "absent"))
    return None


def _from_cmdline(ctx: Ctx, tried: list[tuple[str, str]]) -> tuple[str, str] | None:
    for arg in _cmdline(ctx):
        if arg.startswith(f"{CREDENTIAL}=") and arg.partition("=")[2]:
            value = arg.partition("=")[2]
            tried.append((f"kernel command line {CREDENTIAL}=", repr(value)))
            return value, f"kernel command line {CREDENTIAL}="
    tried.append((f"kernel command line {CREDENTIAL}=", "absent"))
    return None


def local_macs(ctx: Ctx) -> dict[str, str]:
    """Interface name -> MAC (lower case), loopback and all-zero addresses left out."""
    macs: dict[str, str] = {}
    for addr in sorted(ctx.path("/sys/class/net").glob("*/address")):
        mac = (_read(addr) or "").lower()
        if mac and mac.strip("0:") and addr.parent.name != "lo":
            macs[addr.parent.name] = mac
    return macs


def _from_mac(
    ctx: Ctx, cluster: Cluster, tried: list[tuple[str, str]]
) -> tuple[str, str] | None:
    macs = local_macs(ctx)
    owners: dict[str, str] = {}
    for node in cluster.nodes:
        for link in (node.public, node.replication):
            if link.mac and link.mac.lower() in macs.values():
                owners.setdefault(node.name, link.mac.lower())
    seen = ", ".join(f"{i} {m}" for i, m in macs.items()) or "no NICs"
    if len(owners) > 1:
        # Both nodes' NICs here: a lab or cloning mistake; refuse to guess.
        tried.append(("NIC MACs", f"{seen}: match several nodes {sorted(owners)}"))
        raise IdentityError(_explain(cluster, tried, "NIC MACs match more than one node"))
    if owners:
        name, mac = next(iter(owners.items()))
        tried.append(("NIC MACs", f"{mac} belongs to {name}"))
        return name, f"NIC MAC {mac}"
    tried.append(("NIC MACs", f"{seen}: none listed in cluster.json"))
    return None


def _explain(cluster: Cluster, tried: list[tuple[str, str]], why: str) -> str:
    lines = [f"cannot tell which cluster node this is: {why}.", "Sources tried, in order:"]
    lines += [f"  - {where}: {said}" for where, said in tried]
    lines.append(f"Nodes in cluster.json: {', '.join(cluster.node_names)}.")
    lines.append(
        f"Fix: give the machine the systemd credential {CREDENTIAL}=NAME (SMBIOS type 11 "
        f"or kernel command line), or {CREDENTIAL}=NAME on the kernel command line. "
        "Nothing was changed."
    )
    return "\n".join(lines)


def resolve(ctx: Ctx, cluster: Cluster) -> Identity:
    tried: list[tuple[str, str]] = []
    found = _from_credential(ctx, tried) or _from_cmdline(ctx, tried) or _from_mac(
        ctx, cluster, tried
    )
    if found is None:
        hostname = _read(ctx.path("/proc/sys/kernel/hostname")) or ""
        tried.append(("hostname", repr(hostname) if hostname else "unknown"))
        if hostname in cluster.node_names:
            found = hostname, "hostname"
    if found is None:
        raise IdentityError(_explain(cluster, tried, "no source names a node"))
    name, source = found
    if name not in cluster.node_names:
        raise IdentityError(_explain(cluster, tried, f"{source} says {name!r}, not a node"))
    return Identity(name, source, tried)
