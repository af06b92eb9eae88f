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
from builder.outdir import check_out, terminate_as_interrupt, write_file

if TYPE_CHECKING:
    from builder.pipeline import Context

log = logging.getLogger("builder")
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    COMMANDS[fn.__name__.removeprefix("cmd_").replace("_", "-")] = fn
    return fn


def say(msg: str) -> None:
    print(msg, file=sys.stderr)


def _build(command: str, args: argparse.Namespace, progress: Callable[[str], None] | None = None) -> Context:
    """The build commands run their plan of builder/pipeline.py's steps: load, check, secrets, ..."""
    from builder import pipeline

    return pipeline.run(pipeline.Context(command, options=args, progress=progress))


def _took(ctx: Context) -> None:
    from builder import pipeline

    log.info(pipeline.summary(ctx))


@command
def cmd_profiles(args: argparse.Namespace) -> int:
    from builder.profile.load import builtin_names

    for name in builtin_names():
        print(name)
    return 0


@command
def cmd_validate(args: argparse.Namespace) -> int:
    from builder.pipeline import read_profile

    source, profile = read_profile(args.profile)
    say(f"{source.name}: ok ({profile.cluster.name}: {len(profile.nodes)} nodes, "
        f"{len(profile.services)} services, release {profile.cluster.release})")
    return 0


@command
def cmd_render(args: argparse.Namespace) -> int:
    ctx = _build("render", args)
    assert ctx.tree is not None
    say(f"wrote {len(ctx.tree.files)} files to {ctx.out}")
    _took(ctx)
    return 0


@command
def cmd_secrets(args: argparse.Namespace) -> int:
    from builder.pipeline import read_profile
    from builder.profile import secrets

    source, _profile = read_profile(args.profile)
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
    ctx = _build("package", args)
    for path in ctx.packages:
        print(path)
    _took(ctx)
    return 0


@command
def cmd_repo(args: argparse.Namespace) -> int:
    ctx = _build("repo", args)
    repo = ctx.outputs[0]
    say(f"apt: deb [trusted=yes] file:{repo / 'apt'} ./   yum: baseurl=file://{repo / 'yum'}")
    _took(ctx)
    return 0


@command
def cmd_image(args: argparse.Namespace) -> int:
    from builder.image.progress import Stages

    stages = Stages()
    ctx = _build("image", args, stages)
    stages.finish("image ready")
    for path in ctx.outputs:
        print(path)
    _took(ctx)
    return 0


@command
def cmd_doctor(args: argparse.Namespace) -> int:
    from builder import tools
    from builder.image.mkosi_tool import find_mkosi
    from builder.lab.site import CHRONYD

    def row(state: str, name: str, package: str, stages: str, why: str, where: str = "") -> None:
        print(f"{state:7} {name:33} {package:18} {stages:16} {why}" + (f" [{where}]" if where else ""))

    # Every tool of the one table (builder/tools.py), with the stages that need it.
    gone = []
    for t in tools.TOOLS:
        found = t.where()
        if t.kind == "setup":
            row("-", t.name, t.package, ",".join(t.stages), t.why, "installed by setup.sh, not checked")
            continue
        gone += [] if found else [t]
        row("ok" if found else "MISSING", t.name, t.package, ",".join(t.stages), t.why, found)
    problems = [t.name for t in gone]
    # Not Debian packages of the host: setup.sh unpacks them privately.
    try:
        row("ok", "mkosi", "(setup-mkosi.sh)", "image", find_mkosi().describe())
    except BuilderError as e:
        row("MISSING", "mkosi", "(setup-mkosi.sh)", "image", e.message)
        problems.append("mkosi")
    chronyd = CHRONYD.is_file()
    row("ok" if chronyd else "MISSING", "chronyd", "(chrony, unpacked)", "lab", "the lab site's time server",
        str(CHRONYD))
    problems += [] if chronyd else ["chronyd"]
    if problems:
        raise BuilderError(f"{len(problems)} host tool(s) missing: {', '.join(problems)}",
                           hint=tools.fix(gone) if gone else tools.SETUP)
    return 0

@command
def cmd_lab(args: argparse.Namespace) -> int:
    import json

    from builder.lab import lab
    from builder.pipeline import load_secrets, read_profile

    source, profile = read_profile(args.profile)
    iso, image = lab.check_inputs(profile, args.verb, args.image, args.install_from_iso)
    report_file = (check_out(args.report, option="--report", kind="file", command="lab", source=source,
                             owned=lab.is_report) if args.report is not None else None)
    lab.check_folders(profile, args.verb, source)
    cluster = lab.cluster_for(profile, load_secrets(source), image, args.accel)
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
