"""Profile -> rendered tree -> cluster .deb -> node image: `builder image` and `builder lab bench`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from builder.image.build import Progress, build_image
from builder.packaging.build import build_packages
from builder.profile.model import Profile
from builder.profile.secrets import Secrets
from builder.render import render


def node_image(profile: Profile, secrets: Secrets, out: Path, formats: str | tuple[str, ...] = "all",
               cache_dir: Path | None = None, node: str | None = None, progress: Progress | None = None,
               build_number: str | None = None) -> list[Path]:
    """Build the cluster package for the image and the image itself; the written files."""
    say = progress or (lambda _stage: None)
    say("Building the cluster package")
    tree = render(profile, secrets)
    with tempfile.TemporaryDirectory(prefix="builder-debs-") as tmp:
        debs = build_packages(profile, tree, ("deb",), Path(tmp), build_number)
        return build_image(profile, debs, out, formats, cache_dir, node, progress)
