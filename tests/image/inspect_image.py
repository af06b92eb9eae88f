"""Look inside a built disk image without booting, mounting or loop devices.

The partition table comes from `sfdisk --json`; the ext4 root file system is
read with `debugfs` at the partition's byte offset (`image?offset=N`), so this
works as any user on any host with util-linux and e2fsprogs.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from builder.errors import BuilderError
from builder.run import run

ROOT_X86_64 = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"


@dataclass(frozen=True)
class Partition:
    node: str
    start: int  # bytes
    size: int  # bytes
    type: str  # GPT type GUID, upper case
    name: str


def partitions(image: Path) -> tuple[int, list[Partition]]:
    """(sector size, partitions) of a GPT disk image."""
    table = json.loads(run(["sfdisk", "--json", image]).stdout)["partitiontable"]
    sector = int(table.get("sectorsize", 512))
    return sector, [
        Partition(
            p["node"],
            int(p["start"]) * sector,
            int(p["size"]) * sector,
            p["type"].upper(),
            p.get("name", ""),
        )
        for p in table.get("partitions", [])
    ]


@dataclass(frozen=True)
class Entry:
    path: str
    mode: int
    uid: int
    gid: int
    size: int

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.mode)

    @property
    def is_link(self) -> bool:
        return stat.S_ISLNK(self.mode)


# `ls -p` lines: /inode/mode/uid/gid/name/size/
_LS_P = re.compile(r"^/(\d+)/([0-7]+)/(\d+)/(\d+)/(.*)/(\d*)/$")


class RootFs:
    """Read-only view of the image's ext4 root partition through debugfs."""

    def __init__(self, image: Path) -> None:
        _, parts = partitions(image)
        roots = [p for p in parts if p.type == ROOT_X86_64]
        if not roots:
            raise BuilderError(f"{image}: no x86-64 root partition")
        self.image = image
        self.partition = roots[0]
        self.device = f"{image}?offset={self.partition.start}"

    def _debugfs(self, *commands: str) -> str:
        proc = subprocess.run(
            ["debugfs", "-f", "-", self.device],
            input="\n".join(commands) + "\n",
            capture_output=True,
            text=True,
            errors="replace",
        )
        if proc.returncode != 0:
            raise BuilderError(f"debugfs failed on {self.device}: {proc.stderr.strip()}")
        return proc.stdout

    def listdirs(self, dirs: list[str]) -> dict[str, list[Entry]]:
        """Entries of each folder (one debugfs run for all of them)."""
        out = self._debugfs(*(f'ls -p "{d}"' for d in dirs))
        result: dict[str, list[Entry]] = {}
        current: str | None = None
        for line in out.splitlines():
            if line.startswith("debugfs: ls -p "):
                current = line[len("debugfs: ls -p ") :].strip('"')
                result[current] = []
                continue
            m = _LS_P.match(line)
            if m and current is not None:
                name = m.group(5)
                if name in (".", ".."):
                    continue
                result[current].append(
                    Entry(
                        str(PurePosixPath(current) / name),
                        int(m.group(2), 8),
                        int(m.group(3)),
                        int(m.group(4)),
                        int(m.group(6) or 0),
                    )
                )
        return result

    def listdir(self, path: str) -> list[Entry]:
        return self.listdirs([path]).get(path, [])

    def walk(self, top: str = "/") -> list[Entry]:
        """Every entry under top, breadth first (one debugfs run per level)."""
        found: list[Entry] = []
        level = [top]
        while level:
            listing = self.listdirs(level)
            level = []
            for entries in listing.values():
                found += entries
                level += [e.path for e in entries if e.is_dir]
        return found

    def stat(self, path: str) -> Entry | None:
        parent = str(PurePosixPath(path).parent)
        return next((e for e in self.listdir(parent) if e.path == path), None)

    def read(self, path: str) -> bytes:
        proc = subprocess.run(["debugfs", "-R", f'cat "{path}"', self.device], capture_output=True)
        return proc.stdout

    def readlink(self, path: str) -> str | None:
        out = self._debugfs(f'stat "{path}"')
        m = re.search(r'Fast link dest: "([^"]*)"', out)
        return m.group(1) if m else None
