"""Output paths: every path option is checked before anything is written, and builder
replaces or adds to only what it made itself.

A folder builder writes carries a marker, `.builder-output` (JSON: the command and the
profile that made it). A folder output (`render -o`, `package -o`, the lab's consoles...)
may be missing, empty or marked; anything else is refused up front (exit 2), as are `/`,
the home folder, the current folder, the profile, its secrets file and their parents.
Replacing a folder is atomic: the new tree is filled in a hidden folder beside the target
and swapped in with two renames while SIGINT/SIGTERM/SIGHUP wait, so an interrupt at any
point leaves the old tree or the new one, and no hidden halves.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from builder.errors import BuilderError, InputError

if TYPE_CHECKING:
    from builder.profile.load import Source

MARKER = ".builder-output"
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
Kind = Literal["replace", "into", "file"]
FOREIGN_FIX = "pick a new or empty folder (e.g. out/); builder replaces or adds to only a folder it made"
OWNED_MAX = 4 << 20  # a file builder wrote (schema, lab report) is far smaller


def marker_of(folder: Path) -> dict[str, str] | None:
    """The marker builder left in `folder`, or None (absent, a symlink, or not one of ours)."""
    path = folder / MARKER
    try:
        if not stat.S_ISREG(path.lstat().st_mode) or path.lstat().st_size > 4096:
            return None
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("command"), str) else None


def write_marker(folder: Path, command: str, profile_name: str, kind: Kind) -> None:
    """kind: `replace` (the folder is one output, swapped whole) or `into` (files are added to it)."""
    from builder import __version__

    text = json.dumps({"made_by": f"builder {__version__}", "command": command, "profile": profile_name,
                       "kind": kind})
    (folder / MARKER).write_text(text + "\n")
    os.chmod(folder / MARKER, 0o644)


# --- checks (nothing is written; a probe folder is made and removed to prove a place writable) ---


def check_out(value: str, *, option: str, kind: Kind, command: str, source: Source | None = None,
              allow: Collection[str] = (), owned: Callable[[bytes], bool] | None = None) -> Path:
    """The absolute path `value` names if builder may write there, else an InputError that names
    the option, the value and the fix. kind: `replace` (a folder swapped whole: only one this
    command made), `into` (a folder files are added to: any builder folder, or one holding only
    `allow` names) or `file` (a single file: only one `owned` recognises as builder's)."""

    def refuse(why: str, fix: str = FOREIGN_FIX) -> InputError:
        return InputError(f"{option} {value!r}: {why}", hint=fix)

    if not value.strip():
        raise refuse("is empty", "give a path, e.g. out/")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise refuse("has a control character (a newline?) in it", "give a plain path")
    if value.split("/", 1)[0].startswith("~"):
        raise refuse("starts with ~, which only a shell expands", "write the full path, e.g. $HOME/out")
    path = Path(os.path.abspath(value))
    for why in (_forbidden(path, source), _existing(path, kind, command, allow, owned)):
        if why:
            raise refuse(*why)
    problem = _unwritable(path, kind)
    if problem:
        raise refuse(problem, "pick a place you can write to")
    return path


def _forbidden(path: Path, source: Source | None) -> tuple[str, str] | None:
    """Places no output may be or contain: it would replace or delete them."""
    guarded: list[tuple[str, Path]] = [("the root folder", Path("/"))]
    with contextlib.suppress(RuntimeError, KeyError):
        guarded.append(("your home folder", Path.home()))
    with contextlib.suppress(OSError):
        guarded.append(("the current folder", Path.cwd()))
    if source is not None:
        from builder.profile.secrets import secrets_path

        guarded.append(("the secrets file", secrets_path(source)))
        if source.path is not None:
            guarded.append(("the profile", source.path))
    targets = {path, Path(os.path.realpath(path))}
    places = [(name, place, {place, Path(os.path.realpath(place))}) for name, place in guarded]
    fix = "pick another path, e.g. a new folder out/"
    for name, _place, spellings in places:
        if targets & spellings:
            return f"is {name}", fix
    for name, place, spellings in places:
        if any(p.is_relative_to(q) for p in spellings for q in targets):
            return f"holds {name} ({place})", fix
    return None


def _existing(path: Path, kind: Kind, command: str, allow: Collection[str],
              owned: Callable[[bytes], bool] | None) -> tuple[str, str] | None:
    """Why what is at `path` must not be replaced or added to, or None."""
    try:
        st = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None  # a parent that is a file: _unwritable says so
    except OSError as e:
        return f"cannot be inspected ({e.strerror})", "pick another path"
    if stat.S_ISLNK(st.st_mode):
        dangling = "" if path.exists() else " (dangling)"
        return f"is a symlink{dangling}", "give the real path, not a link; builder does not write through links"
    if kind == "file":
        if not stat.S_ISREG(st.st_mode):
            return "is not a regular file", "give a file name"
        if owned is None or st.st_size > OWNED_MAX or not owned(_head(path)):
            return "is a file builder did not write", "pick another file name; builder overwrites only its own"
        return None
    if not stat.S_ISDIR(st.st_mode):
        return "is a file, not a folder", "pick a folder name"
    try:
        entries = set(os.listdir(path))
    except OSError as e:
        return f"cannot be read ({e.strerror})", "pick another folder"
    mark = marker_of(path) if entries else None
    if not entries or (kind == "into" and (entries <= set(allow) or (mark and mark.get("kind") == "into"))):
        return None
    if mark is None:
        return f"is not empty and builder did not make it (no {MARKER} in it)", FOREIGN_FIX
    if kind == "into":
        return f"holds the output of `builder {mark['command']}`, which its next run replaces whole", "pick another folder"
    if mark["command"] != command or mark.get("kind") != "replace":
        return (f"holds the output of `builder {mark['command']}`, which `builder {command}` would delete",
                "pick another folder")
    return None


def is_builders(folder: Path, allow: Collection[str] = ()) -> bool:
    """A real folder builder may remove: empty, marked, or holding only `allow` names."""
    return folder.is_dir() and not folder.is_symlink() and _existing(folder, "into", "", allow, None) is None


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(OWNED_MAX)
    except OSError:
        return b""


def _unwritable(path: Path, kind: Kind) -> str | None:
    """Why builder could not create what it writes at `path`, or None: the nearest existing
    folder is probed (a folder made and removed), which catches read-only mounts and /proc."""
    where = path if kind == "into" and path.is_dir() else path.parent
    while not os.path.lexists(where):
        where = where.parent
    if not where.is_dir():
        return f"{where} is not a folder"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".builder-probe-", dir=where))
    except OSError as e:
        return f"cannot write in {where} ({e.strerror})"
    return None


QCOW2 = (0, b"QFI\xfb")
ISO9660 = (0x8001, b"CD001")


def check_in(value: str, *, option: str, magic: tuple[int, bytes], what: str, fix: str) -> Path:
    """An input file (an image, an ISO): a regular file, readable, of the right kind. QEMU's
    option syntax cannot take a comma in a file name, so that is refused too."""

    def refuse(why: str, hint: str = fix) -> InputError:
        return InputError(f"{option} {value!r}: {why}", hint=hint)

    path = Path(value)
    if not value.strip() or any(ord(c) < 32 or ord(c) == 127 or c == "," for c in str(path.absolute())):
        raise refuse("is not a usable file name (empty, or a control character or comma in its path)",
                     f"give the path of the {what}")
    offset, expected = magic
    try:
        if not path.is_file():
            raise refuse("is not a file" if path.exists() else "does not exist")
        with path.open("rb") as f:
            f.seek(offset)
            found = f.read(len(expected))
    except OSError as e:
        raise refuse(f"cannot be read ({e.strerror})", f"give a readable {what}") from None
    if found != expected:
        raise refuse(f"is not a {what}")
    return path.absolute()


# --- writing ---


def ensure_out_dir(path: Path, *, command: str, profile_name: str, allow: Collection[str] = ()) -> Path:
    """The folder files are added to: created with the marker, or an existing empty, marked
    (by any builder command) or `allow`-only folder."""
    path = Path(os.path.abspath(path))
    why = _existing(path, "into", command, allow, None)
    if why:
        raise InputError(f"{path}: {why[0]}", hint=why[1])
    try:
        path.mkdir(parents=True, exist_ok=True)
        if marker_of(path) is None:
            write_marker(path, command, profile_name, "into")
    except OSError as e:
        raise BuilderError(f"cannot create {path}: {e.strerror}", hint="pick a place you can write to") from None
    return path


@contextlib.contextmanager
def held() -> Iterator[None]:
    """SIGINT/SIGTERM/SIGHUP wait until the block is done, then interrupt (KeyboardInterrupt).
    Python handlers only run in the main thread, so elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.signal(s, lambda n, _f: pending.append(n)) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        if pending:
            raise KeyboardInterrupt


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C, so `finally` blocks clean up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


def replace_dir(dest: Path, fill: Callable[[Path], None], *, command: str | None, profile_name: str = "",
                mode: int | None = None) -> Path:
    """Fill a new folder and swap it in for `dest` atomically. With a command, the new folder
    gets the marker and only a missing, empty or same-command folder is replaced; without
    one (builder's own cache folders) whatever folder is there is. mode: of the new folder
    (default: the replaced folder's, else 0700 as made)."""
    dest = Path(os.path.abspath(dest))
    why = _existing(dest, "replace", command, (), None) if command else None
    if why:
        raise InputError(f"{dest}: {why[0]}", hint=why[1])
    if os.path.lexists(dest) and not (dest.is_dir() and not dest.is_symlink()):
        raise BuilderError(f"{dest} is not a folder", hint="remove it, or pick another place")
    if mode is None and dest.is_dir():
        mode = stat.S_IMODE(dest.stat().st_mode)  # an empty folder the user made keeps its mode
    _mkdirs(dest.parent)
    for stale in os.listdir(dest.parent):  # what a run killed by SIGKILL left
        if stale.startswith(f".{dest.name}.old-"):
            shutil.rmtree(dest.parent / stale, ignore_errors=True)
    tmp: Path | None = None
    old: Path | None = None
    with terminate_as_interrupt():
        try:
            with held():
                tmp = _mkdtemp(dest.parent, f".{dest.name}.new-")
            fill(tmp)
            if command:
                write_marker(tmp, command, profile_name, "replace")
            if mode is not None:
                os.chmod(tmp, mode)
            with held():
                old = _swap(tmp, dest)
                tmp = None
        finally:
            with held():
                for p in (tmp, old):
                    if p is not None:
                        shutil.rmtree(p, ignore_errors=True)
    return dest


def _swap(new: Path, dest: Path) -> Path | None:
    """Rename dest aside (onto an empty placeholder) and new into place; on failure put dest back."""
    old = None
    try:
        if os.path.lexists(dest):
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            os.rename(dest, old)
        try:
            os.rename(new, dest)
        except OSError:
            if old is not None:
                os.rename(old, dest)
                old = None
            raise
    except OSError as e:
        raise BuilderError(f"cannot replace {dest}: {e.strerror}",
                           hint="if it is a mount point, give a new folder inside it") from None
    return old


def _mkdtemp(folder: Path, prefix: str) -> Path:
    try:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
    except OSError as e:
        raise BuilderError(f"cannot write in {folder}: {e.strerror}", hint="pick a place you can write to") from None


def _mkdirs(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BuilderError(f"cannot create {folder}: {e.strerror}", hint="pick a place you can write to") from None


def write_file(path: Path, data: bytes, *, command: str, profile_name: str = "", mode: int = 0o644) -> Path:
    """Write one file atomically (a hidden temporary beside it, then a rename); a missing
    folder is made as builder's own (with the marker)."""
    path = Path(os.path.abspath(path))
    if not path.parent.exists():
        ensure_out_dir(path.parent, command=command, profile_name=profile_name)
    tmp: Path | None = None
    with terminate_as_interrupt():
        try:
            with held():
                fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
                tmp = Path(name)
                f = os.fdopen(fd, "wb")
            with f:
                f.write(data)
            os.chmod(tmp, mode)
            with held():
                os.replace(tmp, path)
                tmp = None
        except OSError as e:
            raise BuilderError(f"cannot write {path}: {e.strerror}", hint="pick a place you can write to") from None
        finally:
            with held():
                if tmp is not None:
                    tmp.unlink(missing_ok=True)
    return path
