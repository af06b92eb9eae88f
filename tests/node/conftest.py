from __future__ import annotations

from pathlib import Path

import pytest

from builder.node import config
from builder.node.context import Ctx

from .fakes import FakeRunner, World, cluster_doc, make_ctx


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path / "root")
    w.install()
    return w


@pytest.fixture
def runner(world: World) -> FakeRunner:
    return FakeRunner(world)


@pytest.fixture
def ctx(world: World, runner: FakeRunner) -> Ctx:
    return make_ctx(world, runner)


@pytest.fixture
def cluster() -> config.Cluster:
    return config.parse(cluster_doc())
