"""The `builder` command: thin; parses options and calls the stages.

Exit codes: 0 ok, 1 a step failed, 2 bad input (nothing written).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from builder import __version__
from builder.errors import BuilderError, InputError

if TYPE_CHECKING:
    from builder.profile.load import Source
    from builder.profile.model import Profile
    from builder.profile.secrets import Secrets

log = logging.getLogger("builder")
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    COMMANDS[fn.__name__.removeprefix("cmd_").replace("_", "-")] = fn
    return fn


def say(msg: str) -> None:
    print(msg, file=sys.stderr)


def _load(args: argparse.Namespace) -> tuple[Source, Profile]:
    from builder.profile.load import parse, resolve

    source = resolve(args.profile)
    return source, parse(source)


def _secrets(source: Source, *, quiet: bool = False) -> Secrets:
    from builder.profile.secrets import load_or_create

    value, path, created = load_or_create(source)
    if created and not quiet:
        say(f"created the cluster's secrets in {path} (mode 0600; keep it, both nodes need the same)")
    return value


@command
def cmd_profiles(args: argparse.Namespace) -> int:
    from builder.profile.load import builtin_names

    for name in builtin_names():
        print(name)
    return 0


@command
def cmd_validate(args: argparse.Namespace) -> int:
    source, profile = _load(args)
    say(f"{source.name}: ok ({profile.cluster.name}: {len(profile.nodes)} nodes, "
        f"{len(profile.services)} services, release {profile.cluster.release})")
    return 0


@command
def cmd_render(args: argparse.Namespace) -> int:
    from builder.render import render

    source, profile = _load(args)
    tree = render(profile, _secrets(source))
    tree.write_atomically(Path(args.out))
    say(f"wrote {len(tree.files)} files to {args.out}")
    return 0


@command
def cmd_secrets(args: argparse.Namespace) -> int:
    from builder.profile import secrets

    source, _profile = _load(args)
    value, path, created = secrets.load_or_create(source)
    if args.set_smtp_password:
        if sys.stdin.isatty():
            password = getpass.getpass("SMTP password (not echoed): ")
        else:
            password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise InputError("empty SMTP password", hint="type the relay password, or pipe it on stdin")
        secrets.write(path, replace(value, smtp_password=password), replace=True)
        say(f"stored the SMTP password in {path}")
    else:
        say(f"{'created' if created else 'using'} {path} (mode 0600; values are never printed)")
    return 0


@command
def cmd_schema(args: argparse.Namespace) -> int:
    from builder.profile.reference import json_schema, markdown

    text = markdown() if args.markdown else json_schema()
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


@command
def cmd_package(args: argparse.Namespace) -> int:
    from builder.packaging.build import build_packages, formats_from
    from builder.render import render

    source, profile = _load(args)
    formats = formats_from(args.format)
    tree = render(profile, _secrets(source))
    for path in build_packages(profile, tree, formats, Path(args.out), args.build_number):
        print(path)
    return 0


@command
def cmd_repo(args: argparse.Namespace) -> int:
    from builder.packaging.build import FORMATS, build_packages
    from builder.packaging.repo import build_repo
    from builder.render import render

    source, profile = _load(args)
    out = Path(args.out)
    tree = render(profile, _secrets(source))
    packages = build_packages(profile, tree, FORMATS, out / "packages", args.build_number)
    repo = build_repo(packages, out)
    say(f"apt: deb [trusted=yes] file:{repo / 'apt'} ./   yum: baseurl=file://{repo / 'yum'}")
    return 0


@command
def cmd_image(args: argparse.Namespace) -> int:
    from builder.image.build import parse_formats
    from builder.image.pipeline import node_image
    from builder.image.progress import Stages

    source, profile = _load(args)
    formats = parse_formats(args.format)
    if args.node and args.node not in {n.name for n in profile.nodes}:
        raise InputError(f"--node {args.node}: not a node of {profile.cluster.name}",
                         hint=f"use one of: {', '.join(n.name for n in profile.nodes)}")
    stages = Stages()
    outputs = node_image(profile, _secrets(source, quiet=False), Path(args.out), formats,
                         Path(args.cache_dir) if args.cache_dir else None, args.node, stages, args.build_number)
    stages.finish("image ready")
    for path in outputs:
        print(path)
    return 0


@command
def cmd_doctor(args: argparse.Namespace) -> int:
    import shutil

    from builder.image.mkosi_tool import find_mkosi

    problems = 0
    for tool, why in (("drbdadm", "checks DRBD configs"), ("shellcheck", "checks scripts"),
                      ("dpkg-deb", "builds .deb"), ("rpmbuild", "builds .rpm"), ("lintian", "checks .deb"),
                      ("rpmlint", "checks .rpm"), ("createrepo_c", "yum repositories"),
                      ("apt-ftparchive", "apt repositories"), ("mmdebstrap", "acceptance roots"),
                      ("qemu-img", "qcow2 images"), ("qemu-system-x86_64", "boot tests and the lab"),
                      ("xorriso", "installer ISO"), ("mkfs.vfat", "installer ISO (dosfstools)"),
                      ("mcopy", "installer ISO (mtools)"), ("zstd", "installer ISO"),
                      ("msmtp", "alert mail tests")):
        path = shutil.which(tool)
        print(f"{'ok  ' if path else 'MISSING'} {tool:20} {path or ''}  ({why})")
        problems += path is None
    try:
        mkosi = find_mkosi()
        print(f"ok   mkosi                {mkosi.describe()}")
    except BuilderError as e:
        print(f"MISSING mkosi: {e.message}")
        problems += 1
    if problems:
        raise BuilderError(f"{problems} tool(s) missing", hint="run `bash scripts/setup.sh` as root")
    return 0


@command
def cmd_lab(args: argparse.Namespace) -> int:
    import json

    from builder.lab import lab

    source, profile = _load(args)
    iso = None
    if args.install_from_iso is not None:
        if args.verb != "run":
            raise InputError("--install-from-iso works with `builder lab run` only",
                             hint=f"builder lab run --profile {profile.cluster.name} --install-from-iso")
        iso = Path(args.install_from_iso or f"out/{profile.cluster.name}-installer.iso")
        if not iso.is_file():
            raise InputError(f"no installer ISO at {iso}",
                             hint=f"build it: builder image --profile {profile.cluster.name} --format iso")
    # Installed from the ISO, the nodes' disks are written by the installer: no image overlay.
    image = iso or (Path(args.image) if args.image else None)
    cluster = lab.cluster_for(profile, _secrets(source), image, args.accel)
    if args.verb == "bench":
        from builder.lab import bench

        report_file = Path(args.report) if args.report else None
        say(bench.summary(bench.run(cluster, report_file)))
    elif args.verb == "up":
        lab.down(cluster)
        cluster.up()
        say(f"lab up: {', '.join(n.name for n in cluster.nodes)} booting in namespace {cluster.net.namespace}; "
            f"consoles in {lab.workdir(profile)}; `builder lab status` to watch, `builder lab down` to stop")
    elif args.verb == "status":
        print(json.dumps(lab.status(cluster), indent=2))
    elif args.verb == "down":
        lab.down(cluster)
        say("lab down: namespace, QEMU processes and disks removed")
    else:
        report_file = Path(args.report) if args.report else None
        try:
            report = lab.run(cluster, report_file, boot=args.verb == "run", install_from=iso)
        finally:
            if report_file and report_file.exists():
                say(lab.summary(json.loads(report_file.read_text())))
        if not report_file:
            say(lab.summary(report))
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="builder",
        description="Build zero-touch two-node HA appliances (DRBD + heartbeat) from one YAML profile.",
    )
    ap.add_argument("--version", action="version", version=f"builder {__version__}")
    ap.add_argument("--debug", action="store_true", help="show the commands run and tracebacks")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return p

    def profile_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--profile", "-p", required=True,
                       help="a built-in profile name (see `builder profiles`) or a YAML file")

    add("profiles", "list the built-in profiles")
    profile_arg(add("validate", "check a profile; exit 2 with every problem if it is wrong"))
    p = add("render", "write the files every node gets (the staging tree)")
    profile_arg(p)
    p.add_argument("--out", "-o", required=True, help="output folder (replaced atomically)")
    p = add("secrets", "create the cluster's secrets file if absent (values are never printed)")
    profile_arg(p)
    p.add_argument("--set-smtp-password", action="store_true",
                   help="store the alert relay's password (prompted, or read from stdin)")
    p = add("schema", "print the profile's JSON Schema (for editors) or its reference page")
    p.add_argument("--markdown", action="store_true", help="the reference page instead of JSON Schema")
    p.add_argument("--out", "-o", help="write to this file instead of stdout")
    for name, help_ in (("package", "build the cluster package (.deb and/or .rpm)"),
                        ("repo", "build the packages and an apt + yum repository holding them"),
                        ("image", "build the bootable node image (raw, qcow2) and the installer ISO with mkosi")):
        p = add(name, help_)
        profile_arg(p)
        p.add_argument("--out", "-o", default="out", help="output folder (default: out)")
        p.add_argument("--build-number", help="package build number (default: UTC timestamp, so rebuilds upgrade)")
        if name == "package":
            p.add_argument("--format", "-f", default="all", choices=("deb", "rpm", "all"))
        if name == "image":
            p.add_argument("--format", "-f", default="all",
                           help="raw, qcow2, iso (the bare-metal installer), or a comma-separated list; "
                                "all = raw,qcow2 (default)")
            p.add_argument("--cache-dir", help="mkosi caches (default: ~/.cache/builder/mkosi)")
            p.add_argument("--node", help="bake this node's identity into the image (default: found at first boot)")
    add("doctor", "say which host tools builder found and what is missing")
    from builder.lab.vm import ACCEL

    p = add("lab", "boot both nodes from the image in QEMU and prove provisioning and failover")
    p.add_argument("verb", choices=("up", "status", "test", "down", "run", "bench"),
                   help="run = up, test, down in one go (what CI runs); bench = hard failover with the "
                        "profile's heartbeat timings and with the tutorial's, and their ratios")
    profile_arg(p)
    p.add_argument("--image", help="node image (default: out/<cluster>.qcow2)")
    p.add_argument("--report", help="write the JSON report (timings, counts) here")
    p.add_argument("--accel", choices=tuple(ACCEL), default="tcg",
                   help="QEMU acceleration: tcg (tuned, default), tcg-plain (QEMU's defaults, to measure the "
                        "tuning against), kvm (only where guests boot with it)")
    p.add_argument("--install-from-iso", nargs="?", const="", metavar="ISO",
                   help="run: install both nodes from the installer ISO first, as on bare metal "
                        "(default ISO: out/<cluster>-installer.iso)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        return COMMANDS[args.command](args)
    except BuilderError as e:
        say(f"builder: error: {e.message}")
        if e.hint:
            say(f"  hint: {e.hint}")
        if args.debug:
            raise
        return e.exit_code
    except KeyboardInterrupt:
        say("builder: interrupted")
        return 130
    except Exception as e:
        if args.debug:
            raise
        say(f"builder: internal error: {type(e).__name__}: {e}\n  hint: rerun with --debug and report it")
        return 1


if __name__ == "__main__":
    sys.exit(main())
