"""Throw-away Debian roots for checking packages with the real apt and dpkg.

mmdebstrap builds a root once per (release, variant, packages, mirror) and we keep
it as a tarball under ${XDG_CACHE_HOME:-~/.cache}/builder/roots/; every check
unpacks a fresh copy, so a test never sees another test's leftovers.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from builder.run import run

# Forbids every service start inside the root (Debian policy interface).
POLICY_RC_D = "#!/bin/sh\n# installed by builder: never start services in this root\nexit 101\n"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "builder" / "roots"


def root_tarball(release: str, mirror: str, *, variant: str = "apt", include: Sequence[str] = ()) -> Path:
    """The cached root tarball, built with mmdebstrap on first use."""
    key = hashlib.sha256(f"{release} {variant} {sorted(include)} {mirror}".encode()).hexdigest()
    out = cache_dir() / f"{release}-{variant}-{key[:12]}.tar"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    argv = ["mmdebstrap", "--quiet", f"--variant={variant}", "--format=tar"]
    if include:
        argv.append("--include=" + ",".join(include))
    argv += [release, str(tmp), f"deb {mirror} {release} main"]
    try:
        run(argv, timeout=1800)
        tmp.rename(out)  # atomic: a killed build never leaves a half tarball in the cache
    finally:
        tmp.unlink(missing_ok=True)
    return out


class Root:
    """An unpacked copy of a cached root, where commands run chrooted."""

    def __init__(self, tarball: Path, parent: Path | None = None, *, apt_cache: Path | None = None) -> None:
        # apt_cache: a host folder bind-mounted on /var/cache/apt/archives, so
        # repeated checks download each .deb once.
        self.apt_cache = apt_cache
        if apt_cache:
            (apt_cache / "partial").mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix="builder-root-", dir=parent))
        run(["tar", "-C", self.path, "--numeric-owner", "-xpf", tarball])
        policy = self.path / "usr/sbin/policy-rc.d"
        policy.write_text(POLICY_RC_D)
        policy.chmod(0o755)
        resolv = self.path / "etc/resolv.conf"
        if resolv.is_symlink() or resolv.exists():
            resolv.unlink()
        shutil.copyfile("/etc/resolv.conf", resolv)

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def run(
        self, argv: Sequence[str | Path], *, check: bool = True, timeout: float = 1800
    ) -> subprocess.CompletedProcess[str]:
        """Run argv chrooted, with /proc mounted in a private mount namespace
        (the mounts vanish with the process, even when it is killed)."""
        mounts = f"mount -t proc proc {shlex.quote(str(self.path / 'proc'))} && "
        if self.apt_cache:
            archives = self.path / "var/cache/apt/archives"
            mounts += f"mount --bind {shlex.quote(str(self.apt_cache))} {shlex.quote(str(archives))} && "
        inner = mounts + f"exec chroot {shlex.quote(str(self.path))} " + shlex.join(map(str, argv))
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "DEBIAN_FRONTEND": "noninteractive",
            "LC_ALL": "C.UTF-8",
            "HOME": "/root",
        }
        return run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner],
            env=env,
            check=check,
            timeout=timeout,
        )

    def copy_in(self, src: Path, dest: str) -> str:
        """Copy a file into the root; returns its path as seen inside."""
        target = self.path / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
        return "/" + dest.lstrip("/")

    def file(self, path: str) -> Path:
        return self.path / path.lstrip("/")


def apt_cache_dir(release: str) -> Path:
    return cache_dir().parent / "apt-archives" / release

