"""Fixtures of the packaging tests: the real render of pbx-ha, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.packaging import build_packages
from builder.packaging.model import Package, package_model
from builder.profile.load import load_profile
from builder.profile.model import Profile
from builder.render import render
from builder.staging import Tree
from tests.conftest import FAKE_SECRETS


@pytest.fixture(autouse=True)
def _fixed_date(monkeypatch: pytest.MonkeyPatch) -> None:
    # changelogs carry a date: fixed, so generated files compare with golden ones
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1735689600")


@pytest.fixture(scope="session")
def pbx() -> Profile:
    return load_profile("pbx-ha")


@pytest.fixture(scope="session")
def pbx_tree(pbx: Profile) -> Tree:
    return render(pbx, FAKE_SECRETS)


@pytest.fixture(scope="session")
def pkg(pbx: Profile, pbx_tree: Tree) -> Package:
    return package_model(pbx, pbx_tree, "1")


@pytest.fixture(scope="session")
def built(pbx: Profile, pbx_tree: Tree, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build 1 of both formats."""
    out = tmp_path_factory.mktemp("pkgs")
    deb, rpm = build_packages(pbx, pbx_tree, ["deb", "rpm"], out, "1")
    return {"deb": deb, "rpm": rpm}
