"""Moving service state for real: cp, ownership, modes, xattrs, ACLs, symlinks.

Runs the real runner on a tree under /var/tmp (tmpfs may lack user xattrs), once
with the "replicated filesystem" on the same filesystem and once on a real ext4
loop mount (as after `mount /dev/drbd0 /replica`), when this host allows it.
"""

from __future__ import annotations

import os
import shutil
import stat
import struct
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from builder.node import services
from builder.node.context import Ctx
from builder.node.runner import Result, SubprocessRunner

NOBODY, NOGROUP = 65534, 65534
ACL = "system.posix_acl_access"



def acl(*entries: tuple[int, int, int]) -> bytes:
    """posix_acl_xattr: version 2, then (tag, perm, id) entries sorted by tag."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


UNDEF = 0xFFFFFFFF
ACL_VALUE = acl((0x01, 6, UNDEF), (0x02, 4, NOBODY), (0x04, 4, UNDEF), (0x10, 4, UNDEF),
                (0x20, 0, UNDEF))


class Recording:
    def __init__(self) -> None:
        self.real = SubprocessRunner()
        self.calls: list[Sequence[str]] = []

    def __call__(self, argv: Sequence[str], **kw: Any) -> Result:
        self.calls.append(argv)
        return self.real(argv, **kw)


def make_state(root: Path) -> None:
    d = root / "var/lib/mysql"
    (d / "db1").mkdir(parents=True)
    (d / "ibdata1").write_bytes(b"\x00innodb\xff" * 1000)
    (d / "db1/t.frm").write_text("table")
    os.link(d / "db1/t.frm", d / "db1/t.hardlink")
    os.symlink("db1/t.frm", d / "current")
    (d / "secret.key").write_text("k")
    for p in (d, d / "db1", d / "ibdata1", d / "db1/t.frm", d / "secret.key"):
        os.chown(p, NOBODY, NOGROUP)
    os.chown(d / "current", NOBODY, NOGROUP, follow_symlinks=False)
    os.chmod(d, 0o2750)
    os.chmod(d / "db1", 0o700)
    os.chmod(d / "secret.key", 0o600)
    os.setxattr(d / "ibdata1", "user.cluster-test", b"keep me")
    os.setxattr(d / "db1/t.frm", ACL, ACL_VALUE)
    os.utime(d / "ibdata1", (1_000_000_000, 1_000_000_000))


def describe(top: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in [top, *sorted(top.rglob("*"))]:
        st = p.lstat()
        entry: dict[str, Any] = {"mode": stat.filemode(st.st_mode), "uid": st.st_uid,
                                 "gid": st.st_gid}
        if p.is_symlink():
            entry["link"] = os.readlink(p)
        else:
            entry["xattrs"] = {k: os.getxattr(p, k) for k in sorted(os.listxattr(p))}
            if p.is_file():
                entry["data"] = p.read_bytes()
                entry["mtime"] = int(st.st_mtime)
                entry["nlink"] = st.st_nlink
        out[str(p.relative_to(top))] = entry
    return out


@pytest.fixture(params=["same-fs", "ext4-mount"])
def root(request: pytest.FixtureRequest) -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="clusterctl-move-", dir="/var/tmp"))
    root = base / "root"
    (root / "replica").mkdir(parents=True)
    mounted = False
    try:
        if request.param == "ext4-mount":
            img = base / "drbd.img"
            with open(img, "wb") as f:
                f.truncate(64 << 20)
            subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True, capture_output=True)
            r = subprocess.run(["mount", "-o", "loop", str(img), str(root / "replica")],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise AssertionError(f"cannot loop-mount ext4 here: {r.stderr.strip()}")
            mounted = True
        make_state(root)
        try:
            os.setxattr(root / "replica", "user.probe", b"1")
            os.removexattr(root / "replica", "user.probe")
        except OSError as e:
            raise AssertionError(f"no user xattrs on {root}: {e}") from e
        yield root
    finally:
        if mounted:
            subprocess.run(["umount", str(root / "replica")], check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_move_preserves_everything_and_rerun_is_a_noop(root: Path) -> None:
    before = describe(root / "var/lib/mysql")
    assert before["db1/t.frm"]["xattrs"][ACL] == ACL_VALUE
    runner = Recording()
    ctx = Ctx(runner=runner, root=root)
    assert services.move(ctx, "/var/lib/mysql", "/replica", "/var/lib/cluster/backup") == "moved"

    link = root / "var/lib/mysql"
    assert link.is_symlink() and os.readlink(link) == "/replica/var/lib/mysql"
    moved = root / "replica/var/lib/mysql"
    assert describe(moved) == before  # owner, mode (incl. setgid), xattr, ACL, mtime, links
    assert (moved / "db1/t.frm").stat().st_ino == (moved / "db1/t.hardlink").stat().st_ino
    assert not list((root / "var/lib").glob("*.clusterctl-*"))
    assert not list((root / "replica/var/lib").glob("*.clusterctl-*"))
    assert not (root / "var/lib/cluster").exists()  # the original was deleted, not kept
    assert [c[0] for c in runner.calls] == ["cp", "sync"]

    runner.calls.clear()
    snapshot = describe(root / "replica"), os.readlink(link)
    assert services.move(ctx, "/var/lib/mysql", "/replica", "/var/lib/cluster/backup") == "already"
    assert runner.calls == []
    assert (describe(root / "replica"), os.readlink(link)) == snapshot


def test_other_node_keeps_its_copy_with_ownership(root: Path) -> None:
    before = describe(root / "var/lib/mysql")
    ctx = Ctx(runner=Recording(), root=root)
    assert services.link(ctx, "/var/lib/mysql", "/replica", "/var/lib/cluster/backup") == "linked"
    assert os.readlink(root / "var/lib/mysql") == "/replica/var/lib/mysql"
    assert describe(root / "var/lib/cluster/backup/var/lib/mysql") == before
    assert services.link(ctx, "/var/lib/mysql", "/replica", "/var/lib/cluster/backup") == "already"
