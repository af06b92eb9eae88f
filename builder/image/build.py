"""`builder image`: profile + local .debs -> <cluster>.raw, <cluster>.qcow2 and/or
<cluster>-installer.iso (the bare-metal installer, builder/image/iso.py).

The cache folder (default ${XDG_CACHE_HOME:-~/.cache}/builder/mkosi) holds all
that survives between builds, so nothing lands in the host's /var/cache or
/var/tmp by accident:

    config/<name>/   the rendered mkosi configuration (re-rendered every build)
    cache/           mkosi's incremental base images and the tools tree's cache
    packages/        downloaded .debs
    output/          mkosi's output folder: the tools tree and the staged image
    workspace/       mkosi's scratch space (emptied after every build)
    logs/<name>.log  the last build's full output

The base image (everything in Packages=) is cached; the local .debs are
installed on top at every build (VolatilePackages=), so a rebuild after a
profile-only change reuses the base.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from builder import tools
from builder.errors import BuilderError, InputError
from builder.image import iso
from builder.image.config import image_spec, read_deb, render
from builder.image.mkosi_tool import MkosiTool, find_mkosi, mkosi_argv
from builder.image.stream import run_logged
from builder.profile.model import Profile
from builder.run import run

FORMATS = ("raw", "qcow2")  # what "all" means
# The ISO builds a second mkosi image (the installer): asked for by name only.
ALL_FORMATS = (*FORMATS, "iso")
MIN_FREE_BYTES = 4 << 30

Progress = Callable[[str], None]
# What a cache folder holds (see above): one holding only these is builder's, marked or not.
CACHE_ENTRIES = frozenset({"cache", "cache-installer", "packages", "output", "workspace", "config", "logs",
                           "iso-work", ".lock"})
FORMAT_HINT = "use raw, qcow2, iso, all (= raw,qcow2) or a comma-separated list"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "builder" / "mkosi"


def parse_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    items = [formats] if isinstance(formats, str) else list(formats)
    out: list[str] = []
    for item in items:
        for f in item.split(","):
            f = f.strip()
            if f == "all":
                out += FORMATS
            elif f in ALL_FORMATS:
                out.append(f)
            else:
                raise InputError(f"--format {f}: unknown image format", hint=FORMAT_HINT)
    if not out:
        raise InputError("no image format requested", hint=FORMAT_HINT)
    return tuple(dict.fromkeys(out))


@contextlib.contextmanager
def _locked(cache_dir: Path) -> Iterator[None]:
    with open(cache_dir / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuilderError(
                f"another image build is using {cache_dir}",
                hint="wait for it, or give this build its own --cache-dir",
            ) from None
        yield


def _clean_workspace(workspace: Path) -> None:
    """Remove what mkosi leaves behind when a build fails or is interrupted."""
    if workspace.is_dir():
        for p in workspace.iterdir():
            if p.name.startswith("mkosi-"):
                shutil.rmtree(p, ignore_errors=True)


def _place(src: Path, tmp: Path) -> None:
    """Move src to tmp (same folder as the final name): rename, else a sparse copy."""
    try:
        os.rename(src, tmp)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        run(["cp", "--sparse=always", "--reflink=auto", src, tmp])


def _mkosi_stage(line: str) -> str | None:
    """mkosi announces its top-level steps as lines starting with '‣'."""
    s = line.strip()
    if line.startswith("‣") and len(s) > 2:
        return s.lstrip("‣ ").strip()
    return None


def build_image(
    profile: Profile,
    debs: Sequence[Path],
    out_dir: Path,
    formats: str | Iterable[str] = FORMATS,
    cache_dir: Path | None = None,
    node: str | None = None,
    progress: Progress | None = None,
    *,
    tool: MkosiTool | None = None,
) -> list[Path]:
    """Build the node image; return the written files (raw, qcow2 and/or the installer ISO,
    then the manifest).

    Outputs appear atomically: a failed build leaves no file under the requested
    names (earlier good outputs stay as they were) and no mkosi workspace.
    """
    say = progress or (lambda _stage: None)
    fmts = parse_formats(formats)
    cache_dir = (cache_dir or default_cache_dir()).absolute()
    out_dir = out_dir.absolute()

    say("Checking inputs")
    local_debs = [read_deb(Path(p).absolute()) for p in debs]
    spec = image_spec(profile, local_debs, node)
    tool = tool or find_mkosi()
    for fmt in ("qcow2", "iso"):  # fail before mkosi spends minutes
        if fmt in fmts:
            tools.require(fmt)

    for d in ("cache", "packages", "output", "workspace", "config", "logs"):
        (cache_dir / d).mkdir(parents=True, exist_ok=True)
    os.chmod(cache_dir, 0o700)
    out_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(cache_dir).free
    if free < MIN_FREE_BYTES:
        raise BuilderError(
            f"only {free >> 20} MiB free in {cache_dir}",
            hint="an image build needs ~6 GB there (tools tree, caches, image): free some, or use --cache-dir",
        )

    log_file = cache_dir / "logs" / f"{spec.output}.log"
    workspace = cache_dir / "workspace"
    staged_dir = cache_dir / "output"
    with _locked(cache_dir):
        _clean_workspace(workspace)
        log_file.write_text("")
        try:
            say(f"Rendering mkosi configuration ({spec.release}, {tool.describe()})")
            config_dir = render(
                spec, cache_dir / "config" / spec.output, local_debs, tools_tree=tool.needs_tools_tree
            )

            def on_line(line: str) -> None:
                stage = _mkosi_stage(line)
                if stage:
                    say(stage)

            run_logged(
                mkosi_argv(tool, config_dir, cache_dir),
                log_file,
                env={**os.environ, **tool.env},
                cwd=config_dir,
                on_line=on_line,
                hint=f"the whole mkosi output is in {log_file}",
            )
            staged = staged_dir / f"{spec.output}.raw"
            if not staged.is_file():
                raise BuilderError(f"mkosi finished but wrote no {staged}", hint=f"see {log_file}")
            extra: list[tuple[Path, Path]] = []
            if "iso" in fmts:
                tmp = iso.build_iso(profile, staged, out_dir, cache_dir, tool, say)
                extra.append((tmp, out_dir / tmp.name.removeprefix(".").removesuffix(".tmp")))
            return _publish(spec.output, staged, staged_dir, out_dir, fmts, say, extra)
        finally:
            _clean_workspace(workspace)


def _publish(
    name: str,
    staged: Path,
    staged_dir: Path,
    out_dir: Path,
    fmts: tuple[str, ...],
    say: Progress,
    extra: Sequence[tuple[Path, Path]] = (),
) -> list[Path]:
    """Write every requested file under a temporary name, then rename them all.

    `extra`: files already written under a temporary name (the ISO): (tmp, final).
    """
    pending: list[tuple[Path, Path]] = list(extra)  # (tmp, final)
    try:
        if "qcow2" in fmts:
            say("Converting to qcow2")
            final = out_dir / f"{name}.qcow2"
            tmp = out_dir / f".{final.name}.tmp"
            pending.append((tmp, final))
            run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", staged, tmp])
        if "raw" in fmts:
            say(f"Writing {name}.raw")
            final = out_dir / f"{name}.raw"
            tmp = out_dir / f".{final.name}.tmp"
            pending.append((tmp, final))
            _place(staged, tmp)
        manifest = staged_dir / f"{name}.manifest"
        if manifest.is_file():
            final = out_dir / f"{name}.manifest.json"
            tmp = out_dir / f".{final.name}.tmp"
            pending.append((tmp, final))
            shutil.copyfile(manifest, tmp)
        for tmp, final in pending:
            os.replace(tmp, final)
        return [final for _tmp, final in pending]
    except BaseException:
        for tmp, _final in pending:
            tmp.unlink(missing_ok=True)
        raise
