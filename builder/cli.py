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
from typing import TYPE_CHECKING

from builder import __version__
from builder.errors import BuilderError, InputError
from builder.outdir import check_out, ensure_out_dir, terminate_as_interrupt, write_file

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


# Every command: load the profile, check every option and path, then the secrets (the
# first write), then the work: a bad option leaves nothing behind, not even a secrets file.


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
    out = check_out(args.out, option="--out", kind="replace", command="render", source=source)
    tree = render(profile, _secrets(source))
    tree.write_atomically(out, profile_name=profile.cluster.name)
    say(f"wrote {len(tree.files)} files to {out}")
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
    if args.out is None:
        sys.stdout.write(text)
        return 0
    out = check_out(args.out, option="--out", kind="file", command="schema", owned=_is_schema)
    write_file(out, text.encode(), command="schema")
    return 0


def _is_schema(data: bytes) -> bool:
    """What `builder schema` wrote (the only file its --out overwrites)."""
    import json

    if data.startswith(b"# Profile reference\n"):
        return True
    try:
        schema = json.loads(data)
    except ValueError:
        return False
    return isinstance(schema, dict) and schema.get("title") == "builder cluster profile"


@command
def cmd_package(args: argparse.Namespace) -> int:
    from builder.packaging.build import build_packages, check_build_number, formats_from
    from builder.render import render

    source, profile = _load(args)
    formats = formats_from(args.format)
    build = check_build_number(args.build_number)
    out = check_out(args.out, option="--out", kind="into", command="package", source=source)
    tree = render(profile, _secrets(source))
    ensure_out_dir(out, command="package", profile_name=profile.cluster.name)  # marked: builder's from now on
    for path in build_packages(profile, tree, formats, out, build):
        print(path)
    return 0


@command
def cmd_repo(args: argparse.Namespace) -> int:
    from builder.packaging.build import FORMATS, build_packages, check_build_number
    from builder.packaging.repo import build_repo
    from builder.render import render

    source, profile = _load(args)
    build = check_build_number(args.build_number)
    out = check_out(args.out, option="--out", kind="into", command="repo", source=source)
    check_out(str(out / "packages"), option="--out", kind="into", command="repo", source=source)
    for sub in ("apt", "yum"):  # replaced whole: only what `builder repo` made
        check_out(str(out / sub), option="--out", kind="replace", command="repo", source=source)
    tree = render(profile, _secrets(source))
    for folder in (out, out / "packages"):
        ensure_out_dir(folder, command="repo", profile_name=profile.cluster.name)
    packages = build_packages(profile, tree, FORMATS, out / "packages", build)
    repo = build_repo(packages, out, profile_name=profile.cluster.name)
    say(f"apt: deb [trusted=yes] file:{repo / 'apt'} ./   yum: baseurl=file://{repo / 'yum'}")
    return 0


@command
def cmd_image(args: argparse.Namespace) -> int:
    from builder.image.build import CACHE_ENTRIES, default_cache_dir, parse_formats
    from builder.image.pipeline import node_image
    from builder.image.progress import Stages
    from builder.packaging.build import check_build_number

    source, profile = _load(args)
    formats = parse_formats(args.format)
    if args.node is not None and args.node not in {n.name for n in profile.nodes}:
        raise InputError(f"--node {args.node!r}: not a node of {profile.cluster.name}",
                         hint=f"use one of: {', '.join(n.name for n in profile.nodes)}")
    build = check_build_number(args.build_number)
    out = check_out(args.out, option="--out", kind="into", command="image", source=source)
    cache_value = args.cache_dir if args.cache_dir is not None else str(default_cache_dir())
    cache = check_out(cache_value, option="--cache-dir", kind="into", command="image", source=source,
                      allow=CACHE_ENTRIES)
    if out == cache or out.is_relative_to(cache) or cache.is_relative_to(out):
        raise InputError(f"--out {args.out!r} and --cache-dir {cache_value!r} overlap",
                         hint="keep the images and mkosi's caches in separate folders")
    secrets = _secrets(source)
    ensure_out_dir(out, command="image", profile_name=profile.cluster.name)
    stages = Stages()
    outputs = node_image(profile, secrets, out, formats, cache, args.node, stages, build)
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
    iso, image = lab.check_inputs(profile, args.verb, args.image, args.install_from_iso)
    report_file = (check_out(args.report, option="--report", kind="file", command="lab", source=source,
                             owned=lab.is_report) if args.report is not None else None)
    lab.check_folders(profile, args.verb, source)
    cluster = lab.cluster_for(profile, _secrets(source), image, args.accel)
    if args.verb == "bench":
        from builder.lab import bench

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
        try:
            report = lab.run(cluster, report_file, boot=args.verb == "run", install_from=iso,
                             power_cuts=not args.no_power_cuts)
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
    p.add_argument("--out", "-o", required=True, help="output folder: new, empty or an earlier render's (replaced atomically)")
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
        p.add_argument("--out", "-o", default="out", help="output folder: new, empty or builder's (default: out)")
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
    p.add_argument("--no-power-cuts", action="store_true",
                   help="run: boot once without cutting each node's power during its first boot")
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
        with terminate_as_interrupt():  # SIGTERM cleans up like Ctrl-C: no half-written outputs
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
    except OSError as e:  # a place that cannot be read or written: one line, not a traceback
        if args.debug:
            raise
        where = f" {e.filename}" if e.filename else ""
        say(f"builder: error: {e.strerror or e}{where}")
        return 1
    except Exception as e:
        if args.debug:
            raise
        say(f"builder: internal error: {type(e).__name__}: {e}\n  hint: rerun with --debug and report it")
        return 1


if __name__ == "__main__":
    sys.exit(main())
