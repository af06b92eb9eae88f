"""A node image built once per test session, shared by the slow image tests.

Its mkosi cache lives in ${BUILDER_TEST_IMAGE_CACHE:-~/.cache/builder/mkosi-test}
so repeated test runs are warm (the first one downloads ~1 GB and takes minutes).
The release is ${BUILDER_TEST_IMAGE_RELEASE:-trixie}.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.errors import BuilderError
from builder.image import build_image, default_cache_dir, find_mkosi
from builder.image.progress import Stages
from tests.image.helpers import make_profile, make_test_deb


@dataclass(frozen=True)
class Built:
    release: str
    out: Path
    raw: Path
    qcow2: Path
    manifest: Path
    cache: Path
    deb: Path
    seconds: float


def image_cache_dir() -> Path:
    env = os.environ.get("BUILDER_TEST_IMAGE_CACHE")
    return Path(env) if env else default_cache_dir().parent / "mkosi-test"


@pytest.fixture(scope="session")
def built_image(tmp_path_factory: pytest.TempPathFactory) -> Built:
    try:
        find_mkosi()
    except BuilderError as e:
        pytest.fail(f"{e.message} ({e.hint})")
    release = os.environ.get("BUILDER_TEST_IMAGE_RELEASE", "trixie")
    work = tmp_path_factory.mktemp("image")
    deb = make_test_deb(work)
    cache = image_cache_dir()
    t0 = time.monotonic()
    try:
        outputs = build_image(make_profile(release), [deb], work / "out", "all", cache, None, Stages())
    except BuilderError as e:
        pytest.fail(f"image build failed: {e.message}\nhint: {e.hint}")
    seconds = time.monotonic() - t0
    by_suffix = {p.name.split(".", 1)[1]: p for p in outputs}
    return Built(
        release,
        work / "out",
        by_suffix["raw"],
        by_suffix["qcow2"],
        by_suffix["manifest.json"],
        cache,
        deb,
        seconds,
    )
