"""Service state on the replicated filesystem: move once, symlink everywhere.

On the node that made the filesystem each state path P is copied to
<mount>/P, then P becomes a symlink to it. On the other node P is moved to
<state_dir>/backup/P and replaced by the same symlink. Every transition is
resumable after power loss:

  copy P to <mount>/P.clusterctl-copy, sync   (cut short: the copy is redone)
  rename P -> P.clusterctl-moved              (cut here: renamed back, redone)
  rename the copy to <mount>/P                <- commit point
  symlink P -> <mount>/P
  delete P.clusterctl-moved

The original is deleted only once the copy is committed and the symlink is in
place, and a crash at any point ends in the same final state.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path

from builder.node.config import Service
from builder.node.context import Ctx, fsync_dir
from builder.node.errors import NodeError

log = logging.getLogger("clusterctl")

COPY_SUFFIX = ".clusterctl-copy"
MOVED_SUFFIX = ".clusterctl-moved"
UNIT_NOT_LOADED = 5  # systemctl exit status for a unit that does not exist


def target_of(path: str, mount: str) -> str:
    """The host path a state path lives at on the replicated filesystem."""
    return f"{mount.rstrip('/')}/{path.strip('/')}"


def is_linked(ctx: Ctx, path: str, mount: str) -> bool:
    src = ctx.path(path)
    return src.is_symlink() and os.readlink(src) == target_of(path, mount)


def socket_of(svc: Service) -> str:
    return svc.unit.removesuffix(".service") + ".socket"


def socket_pattern(svc: Service) -> str:
    """All its sockets (mariadb.socket, mariadb-extra.socket): systemctl stop takes globs."""
    return svc.unit.removesuffix(".service") + "*.socket"


def stop(ctx: Ctx, svc: Service) -> None:
    # Its socket first (MariaDB has one): a connection to it, even a health
    # probe, would start the service again on local data.
    ctx.run(["systemctl", "stop", socket_pattern(svc)], check=False)
    r = ctx.run(["systemctl", "stop", svc.unit], check=False)
    if r.returncode == UNIT_NOT_LOADED:
        log.warning("%s is not installed (nothing to stop)", svc.unit)
    elif not r.ok:
        raise NodeError(f"cannot stop {svc.unit} (exit {r.returncode}): {r.output}")


def disable(ctx: Ctx, svc: Service) -> None:
    # heartbeat starts the services, never systemd at boot.
    ctx.run(["systemctl", "disable", socket_of(svc)], check=False)  # most have none
    r = ctx.run(["systemctl", "disable", svc.unit], check=False)
    if not r.ok:
        log.warning("could not disable %s: %s", svc.unit, r.output)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _link(ctx: Ctx, path: str, mount: str) -> None:
    src = ctx.path(path)
    src.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target_of(path, mount), src)
    fsync_dir(src.parent)
    ctx.mark(f"linked {path}")


def _free_name(path: Path) -> Path:
    if not os.path.lexists(path):
        return path
    n = 1
    while os.path.lexists(path.with_name(f"{path.name}.{n}")):
        n += 1
    return path.with_name(f"{path.name}.{n}")


def backup(ctx: Ctx, path: str, backup_dir: str) -> Path:
    """Move `path` aside to <backup_dir>/<path> (never overwriting an older backup)."""
    src = ctx.path(path)
    dest = _free_name(ctx.path(backup_dir) / path.strip("/"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, dest)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        ctx.run(["mv", "-T", src, dest])  # other filesystem: copy + delete
    log.info("kept %s as %s", path, dest)
    ctx.mark(f"backed up {path}")
    return dest


def move(ctx: Ctx, path: str, mount: str, backup_dir: str) -> str:
    """Move one state path onto the mounted replicated filesystem (see module doc)."""
    src = ctx.path(path)
    dst = ctx.path(target_of(path, mount))
    tmp = dst.with_name(dst.name + COPY_SUFFIX)
    moved = src.with_name(src.name + MOVED_SUFFIX)

    if is_linked(ctx, path, mount):
        if os.path.lexists(moved):
            _remove(moved)
        return "already"
    if src.is_symlink():
        raise NodeError(
            f"{path} is a symlink to {os.readlink(src)}, not to {target_of(path, mount)}: "
            "refusing to guess where its data is"
        )
    if not os.path.lexists(src) and os.path.lexists(moved) and not os.path.lexists(dst):
        os.rename(moved, src)  # cut before the commit: undo the retire, copy again
    if os.path.lexists(src) and os.path.lexists(dst):
        # <mount>/P exists yet P was never retired: not our half-done move but data
        # from an earlier life of the cluster. Keep the local copy aside; link.
        backup(ctx, path, backup_dir)
        _link(ctx, path, mount)
        return "linked"
    result = "linked"
    if os.path.lexists(src):
        _remove(tmp)  # a copy cut short by power loss
        dst.parent.mkdir(parents=True, exist_ok=True)
        ctx.run(["cp", "-a", "--preserve=all", "--no-target-directory", src, tmp])
        ctx.run(["sync", "--file-system", tmp])
        ctx.mark(f"copied {path}")
        os.rename(src, moved)
        fsync_dir(src.parent)
        ctx.mark(f"retired {path}")
        os.rename(tmp, dst)  # commit point
        fsync_dir(dst.parent)
        ctx.mark(f"committed {path}")
        result = "moved"
    if not os.path.lexists(dst):
        raise NodeError(f"state path {path} does not exist here nor on {mount}: is it installed?")
    _link(ctx, path, mount)
    if os.path.lexists(moved):
        _remove(moved)
    return result


def link(ctx: Ctx, path: str, mount: str, backup_dir: str) -> str:
    """On a node that did not make the filesystem: keep local data aside, symlink."""
    if is_linked(ctx, path, mount):
        return "already"
    if os.path.lexists(ctx.path(path)):
        backup(ctx, path, backup_dir)
    _link(ctx, path, mount)
    return "linked"
