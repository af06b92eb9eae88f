"""Per-cluster secrets: generated, 0600, never printed.

The file lives beside the profile (`<profile>.secrets`), or for a built-in
profile in the user's state folder. Both nodes need the same values, so they are
generated once on the build host and shipped 0600 root-only in the package.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets as rnd
import stat
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from builder.errors import InputError
from builder.outdir import held
from builder.profile.load import Source


@dataclass(frozen=True, repr=False)
class Secrets:
    # heartbeat's strongest authkeys method is sha1 (an HMAC): a 256-bit random key.
    heartbeat_key: str
    # DRBD's shared-secret, used with cram-hmac-alg sha256; DRBD allows < 64 chars.
    drbd_secret: str
    smtp_password: str = ""
    # The services' database password (pbx-ha: MariaDB user `pbx`, from the LAN).
    db_password: str = ""

    def __repr__(self) -> str:  # never leak into logs or tracebacks
        return "Secrets(<hidden>)"

    def values(self) -> list[str]:
        return [v for v in asdict(self).values() if v]


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "builder"


def secrets_path(source: Source) -> Path:
    if source.path is not None:
        return source.path.with_name(source.path.name.rsplit(".", 1)[0] + ".secrets")
    return state_dir() / f"{source.ref}.secrets"


GENERATED = ("heartbeat_key", "drbd_secret", "db_password")


def generate() -> Secrets:
    return Secrets(heartbeat_key=rnd.token_hex(32), drbd_secret=rnd.token_hex(24), db_password=rnd.token_hex(16))


def load(path: Path) -> Secrets:
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"secrets file {path} is not a file (a folder?)",
                             hint=f"move {path} away: builder keeps the cluster's secrets in a file of that name")
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise InputError(
                f"secrets file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o})",
                hint=f"chmod 600 {path}",
            )
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"secrets file {path} cannot be read ({e.strerror})",
                         hint="run builder as the user who owns it, or give it back to that user (chown)") from None
    except UnicodeDecodeError:
        text = ""
    try:
        data = json.loads(text)
        return Secrets(**data)
    except (ValueError, TypeError):
        raise InputError(f"secrets file {path} is damaged", hint="restore it from a backup; both nodes need the same secrets") from None


def write(path: Path, value: Secrets, *, replace: bool = False) -> None:
    """Create the file 0600 from the start (no window where it is readable); atomically, and
    an interrupt leaves no temporary behind."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with held():
            tmp.unlink(missing_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(asdict(value), f, indent=2)
                f.write("\n")
            if not replace and os.path.lexists(path):
                tmp.unlink()
                raise InputError(f"secrets file {path} already exists")
            tmp.replace(path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write the secrets file {path} ({e.strerror})",
                         hint="make that folder writable, or copy the profile into a folder you can write to") from None


def load_or_create(source: Source) -> tuple[Secrets, Path, bool]:
    """The cluster's secrets; creates them on first use. Returns (secrets, path, created)."""
    path = secrets_path(source)
    if source.path is not None and path == source.path:
        raise InputError(f"--profile {source.path}: is named like a secrets file (.secrets)",
                         hint="name the profile <cluster>.yaml: its secrets go beside it as <cluster>.secrets")
    if os.path.lexists(path):
        value = load(path)
        missing = {k: getattr(generate(), k) for k in GENERATED if not getattr(value, k)}
        if missing:  # a file from an older builder: add the new secrets, keep the old ones
            value = replace(value, **missing)
            write(path, value, replace=True)
        return value, path, False
    value = generate()
    write(path, value)
    return value, path, True
