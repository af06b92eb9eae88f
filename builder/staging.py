"""The staging tree: every file a node gets, with its mode, as plain data.

`render` produces it; the deb and rpm writers, the image and the tests consume
it. Nothing downstream re-reads the profile's YAML.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from builder.outdir import replace_dir


@dataclass(frozen=True)
class StagedFile:
    path: PurePosixPath  # absolute path on the node, e.g. /etc/ha.d/ha.cf
    data: bytes
    mode: int = 0o644
    secret: bool = False  # holds a secret: mode must be 0600, never shown

    @property
    def is_conffile(self) -> bool:
        return self.path.is_relative_to("/etc")


@dataclass(frozen=True)
class Tree:
    files: tuple[StagedFile, ...]

    def __iter__(self) -> Iterator[StagedFile]:
        return iter(self.files)

    def get(self, path: str) -> StagedFile:
        for f in self.files:
            if str(f.path) == path:
                return f
        raise KeyError(path)

    def write(self, root: Path) -> None:
        """Write every file under root with its mode."""
        for f in self.files:
            dest = root / f.path.relative_to("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(f.data)
            os.chmod(dest, f.mode)

    def write_atomically(self, out: Path, *, profile_name: str = "") -> None:
        """Replace `out` with the tree, atomically (builder.outdir.replace_dir): `out` is the
        old tree or the new one, never a mix; only a folder `render` made is replaced."""
        replace_dir(out, self.write, command="render", profile_name=profile_name)
