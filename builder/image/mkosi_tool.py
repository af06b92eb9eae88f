"""Find the mkosi that `scripts/setup-mkosi.sh` installed, and say how to run it.

Two shapes (see docs and reference/platform-notes.md):
- Debian 13+: the distribution's `mkosi` (25.x) on PATH; the host has the tools.
- Debian 12: trixie's mkosi unpacked in a private folder, run as
  `/usr/bin/python3 -m mkosi` with PYTHONPATH, and it needs a Debian trixie
  tools tree (ToolsTree=default) for systemd-repart, ukify, mkfs and qemu.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import BuilderError

MIN_MAJOR = 25
DEFAULT_PRIVATE_DIR = Path("/var/lib/builder/mkosi")
SETUP_HINT = "run `scripts/setup-mkosi.sh` as root (it installs mkosi 25 for this host)"
_PYTHONPATH_SUFFIX = "usr/lib/python3/dist-packages"


@dataclass(frozen=True)
class MkosiTool:
    argv: tuple[str, ...]  # command prefix: argv + ["-C", dir, "build"]
    version: str  # "25.3"
    source: str  # human-readable: where it was found
    env: dict[str, str] = field(default_factory=dict)  # extra environment (PYTHONPATH)
    needs_tools_tree: bool = False  # build with ToolsTree=default (Debian trixie)

    @property
    def major(self) -> int:
        m = re.match(r"(\d+)", self.version)
        return int(m.group(1)) if m else 0

    def describe(self) -> str:
        tools = "with a Debian trixie tools tree" if self.needs_tools_tree else "with the host's tools"
        return f"mkosi {self.version} ({self.source}), {tools}"


def _version(argv: list[str], env: dict[str, str]) -> str | None:
    try:
        proc = subprocess.run(
            [*argv, "--version"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"mkosi (\d+(?:\.\d+)*)", proc.stdout)
    return m.group(1) if proc.returncode == 0 and m else None


def _private(folder: Path) -> MkosiTool | None:
    pkgdir = folder / _PYTHONPATH_SUFFIX
    if not (pkgdir / "mkosi" / "__main__.py").is_file():
        return None
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else (shutil.which("python3") or "")
    if not python:
        return None
    env = {"PYTHONPATH": str(pkgdir)}
    argv = [python, "-m", "mkosi"]
    version = _version(argv, env)
    if not version:
        return None
    return MkosiTool(tuple(argv), version, f"unpacked in {folder}", env, needs_tools_tree=True)


def _on_path() -> MkosiTool | None:
    exe = shutil.which("mkosi")
    if not exe:
        return None
    version = _version([exe], {})
    if not version:
        return None
    return MkosiTool((exe,), version, exe, {}, needs_tools_tree=False)


def find_mkosi(private_dir: Path | None = None) -> MkosiTool:
    """The mkosi to build images with, or a BuilderError that says how to get one.

    Order: $BUILDER_MKOSI_DIR (or /var/lib/builder/mkosi) unpacked by the setup
    script, then `mkosi` on PATH. $BUILDER_MKOSI_TOOLS_TREE=1/0 forces the tools
    tree on or off.
    """
    folder = private_dir or Path(os.environ.get("BUILDER_MKOSI_DIR") or DEFAULT_PRIVATE_DIR)
    found: list[str] = []
    for tool in (_private(folder), _on_path()):
        if tool is None:
            continue
        if tool.major >= MIN_MAJOR:
            forced = os.environ.get("BUILDER_MKOSI_TOOLS_TREE")
            if forced in ("0", "1"):
                tool = MkosiTool(tool.argv, tool.version, tool.source, tool.env, forced == "1")
            return tool
        found.append(f"mkosi {tool.version} ({tool.source})")
    raise BuilderError(
        f"no mkosi {MIN_MAJOR} or newer found"
        + (f" (found only {', '.join(found)})" if found else f" (looked in {folder} and PATH)"),
        hint=SETUP_HINT,
    )


def mkosi_argv(tool: MkosiTool, config_dir: Path, cache_dir: Path, cache: str = "cache") -> list[str]:
    """The mkosi command line: host-specific folders here, the rest in the rendered config.
    `cache`: the incremental-image folder under cache_dir (the installer keeps its own:
    mkosi names caches by distribution~release~arch, which the node image shares)."""
    return [
        *tool.argv,
        "--directory", str(config_dir),
        "--force",
        "--output-directory", str(cache_dir / "output"),
        "--cache-directory", str(cache_dir / cache),
        "--package-cache-dir", str(cache_dir / "packages"),
        "--workspace-directory", str(cache_dir / "workspace"),
        "build",
    ]  # fmt: skip
