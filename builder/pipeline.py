"""The build as one flat list of named steps over one context (mkosi's shape).

    load -> check -> secrets -> render -> write -> out -> package -> repo -> image

Each build command runs its plan, the steps it needs, always in this order:
`render` ends with write, `package` with package, `repo` with repo, `image` with
image (the raw and qcow2 disks and the installer ISO: one mkosi run under one
cache lock, published together). Every option and path is checked before the
secrets file, the first write, is made: a bad option leaves nothing behind.
Each step is timed (`ctx.timings`) and logged at debug level (`step render: 0.04 s`);
`summary()` is the one line a build command ends with.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import InputError
from builder.image import build as imaging
from builder.image.build import Progress
from builder.outdir import Kind, check_out, ensure_out_dir
from builder.packaging import build as packaging
from builder.packaging.repo import build_repo
from builder.profile import load as loading
from builder.profile import secrets as secrets_file
from builder.profile.load import Source
from builder.profile.model import Profile
from builder.profile.secrets import Secrets
from builder.render import render as render_tree
from builder.staging import Tree

log = logging.getLogger("builder")


@dataclass
class Context:
    """What the steps share: the command's options in, each step's results out."""

    command: str  # render, package, repo or image: picks the plan and the checks
    options: argparse.Namespace = field(default_factory=argparse.Namespace)
    progress: Progress | None = None  # the image build's stage printer
    source: Source | None = None
    profile: Profile | None = None
    # set by the check step, from the options
    out: Path | None = None
    folders: tuple[Path, ...] = ()  # made and marked builder's right before packaging
    package_formats: tuple[str, ...] = ("deb",)
    package_dir: Path | None = None  # None: a scratch folder (the image's .deb goes in, not out)
    build_number: str | None = None
    image_formats: tuple[str, ...] = imaging.FORMATS
    cache: Path | None = None
    node: str | None = None
    # set by the later steps
    secrets: Secrets | None = None
    tree: Tree | None = None
    packages: list[Path] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    scratch: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


def say(msg: str) -> None:
    print(msg, file=sys.stderr)


def read_profile(value: str) -> tuple[Source, Profile]:
    source = loading.resolve(value)
    return source, loading.parse(source)


def load_secrets(source: Source) -> Secrets:
    value, path, created = secrets_file.load_or_create(source)
    if created:
        say(f"created the cluster's secrets in {path} (mode 0600; keep it, both nodes need the same)")
    return value


# --- the steps ---


def load(ctx: Context) -> None:
    ctx.source, ctx.profile = read_profile(ctx.options.profile)


def check(ctx: Context) -> None:
    CHECKS[ctx.command](ctx)


def secrets(ctx: Context) -> None:
    assert ctx.source is not None
    ctx.secrets = load_secrets(ctx.source)


def render(ctx: Context) -> None:
    assert ctx.profile is not None and ctx.secrets is not None
    if ctx.progress:  # the image's first stage: render and package
        ctx.progress("Building the cluster package")
    ctx.tree = render_tree(ctx.profile, ctx.secrets)


def write(ctx: Context) -> None:
    assert ctx.profile is not None and ctx.tree is not None and ctx.out is not None
    ctx.tree.write_atomically(ctx.out, profile_name=ctx.profile.cluster.name)
    ctx.outputs = [ctx.out]


def out(ctx: Context) -> None:
    """Only now, with the tree rendered, are the output folders made: marked builder's from then on."""
    assert ctx.profile is not None
    for folder in ctx.folders:
        ensure_out_dir(folder, command=ctx.command, profile_name=ctx.profile.cluster.name)


def package(ctx: Context) -> None:
    assert ctx.profile is not None and ctx.tree is not None
    dest = ctx.package_dir or Path(ctx.scratch.enter_context(tempfile.TemporaryDirectory(prefix="builder-debs-")))
    ctx.packages = packaging.build_packages(ctx.profile, ctx.tree, ctx.package_formats, dest, ctx.build_number)
    ctx.outputs = list(ctx.packages)


def repo(ctx: Context) -> None:
    assert ctx.profile is not None and ctx.out is not None
    ctx.outputs = [build_repo(ctx.packages, ctx.out, profile_name=ctx.profile.cluster.name)]


def image(ctx: Context) -> None:
    assert ctx.profile is not None and ctx.out is not None
    ctx.outputs = imaging.build_image(ctx.profile, ctx.packages, ctx.out, ctx.image_formats, ctx.cache, ctx.node,
                                      ctx.progress)


Step = Callable[[Context], None]
STEPS: tuple[tuple[str, Step], ...] = (
    ("load", load), ("check", check), ("secrets", secrets), ("render", render), ("write", write),
    ("out", out), ("package", package), ("repo", repo), ("image", image),
)
PLANS: dict[str, tuple[str, ...]] = {
    "render": ("load", "check", "secrets", "render", "write"),
    "package": ("load", "check", "secrets", "render", "out", "package"),
    "repo": ("load", "check", "secrets", "render", "out", "package", "repo"),
    "image": ("load", "check", "secrets", "render", "out", "package", "image"),
}


def run(ctx: Context, plan: tuple[str, ...] | None = None) -> Context:
    """Run the plan's steps (default: the command's) in STEPS order, each timed; the context."""
    wanted = PLANS[ctx.command] if plan is None else plan
    with ctx.scratch:  # scratch folders live until the last step is done
        for name, step in STEPS:
            if name in wanted:
                _timed(ctx, name, step)
    return ctx


def _timed(ctx: Context, name: str, step: Step) -> None:
    started, ok = time.monotonic(), False
    try:
        step(ctx)
        ok = True
    finally:
        ctx.timings[name] = time.monotonic() - started
        log.debug("step %s: %.2f s%s", name, ctx.timings[name], "" if ok else " (failed)")


def summary(ctx: Context) -> str:
    """One line: `render took 0.1 s: load 0.03 s, check 0.00 s, ...`."""
    steps = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in ctx.timings.items())
    return f"{ctx.command} took {sum(ctx.timings.values()):.1f} s: {steps}"


def node_image(profile: Profile, secrets: Secrets, out: Path, formats: str = "qcow2") -> list[Path]:
    """A node image of a profile already loaded and checked (`lab bench`'s tutorial variant):
    render, package and image into `out`, builder's own folder (no marker needed)."""
    ctx = Context("image", profile=profile, secrets=secrets, out=out, image_formats=imaging.parse_formats(formats))
    return run(ctx, ("render", "package", "image")).outputs


# --- the check step, per command: every option and path, before anything is written ---


def _check_render(ctx: Context) -> None:
    ctx.out = _out(ctx, "replace")


def _check_package(ctx: Context) -> None:
    ctx.package_formats = packaging.formats_from(ctx.options.format)
    ctx.build_number = packaging.check_build_number(ctx.options.build_number)
    ctx.out = ctx.package_dir = _out(ctx, "into")
    ctx.folders = (ctx.out,)


def _check_repo(ctx: Context) -> None:
    ctx.build_number = packaging.check_build_number(ctx.options.build_number)
    ctx.out = _out(ctx, "into")
    ctx.package_dir = _out(ctx, "into", str(ctx.out / "packages"))
    for sub in ("apt", "yum"):  # replaced whole: only what `builder repo` made
        _out(ctx, "replace", str(ctx.out / sub))
    ctx.package_formats, ctx.folders = packaging.FORMATS, (ctx.out, ctx.package_dir)


def _check_image(ctx: Context) -> None:
    assert ctx.profile is not None
    opts, profile = ctx.options, ctx.profile
    ctx.image_formats = imaging.parse_formats(opts.format)
    if opts.node is not None and opts.node not in {n.name for n in profile.nodes}:
        raise InputError(f"--node {opts.node!r}: not a node of {profile.cluster.name}",
                         hint=f"use one of: {', '.join(n.name for n in profile.nodes)}")
    ctx.node = opts.node
    ctx.build_number = packaging.check_build_number(opts.build_number)
    out = _out(ctx, "into")
    cache_value = opts.cache_dir if opts.cache_dir is not None else str(imaging.default_cache_dir())
    cache = check_out(cache_value, option="--cache-dir", kind="into", command="image", source=ctx.source,
                      allow=imaging.CACHE_ENTRIES)
    if out == cache or out.is_relative_to(cache) or cache.is_relative_to(out):
        raise InputError(f"--out {opts.out!r} and --cache-dir {cache_value!r} overlap",
                         hint="keep the images and mkosi's caches in separate folders")
    ctx.out, ctx.cache, ctx.folders = out, cache, (out,)


def _out(ctx: Context, kind: Kind, value: str | None = None) -> Path:
    """--out (or a folder inside it) checked for this command."""
    return check_out(ctx.options.out if value is None else value, option="--out", kind=kind, command=ctx.command,
                     source=ctx.source)


CHECKS: dict[str, Step] = {"render": _check_render, "package": _check_package, "repo": _check_repo,
                           "image": _check_image}
