"""Shared fixtures: profiles on disk with obviously fake secrets beside them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from builder.profile.load import BUILTIN
from builder.profile.secrets import Secrets

REPO = Path(__file__).resolve().parent.parent
# Obviously fake: never a real cluster's secrets.
FAKE_SECRETS = Secrets(
    heartbeat_key="FAKE0heartbeat0key0for0tests0only0000000000000000000000000000000",
    drbd_secret="FAKE-drbd-secret-for-tests-only",
    smtp_password="FAKE-smtp-password-for-tests",
    db_password="FAKE-db-password-for-tests",
)


def pbx_ha_data() -> dict:
    return yaml.safe_load((BUILTIN / "pbx-ha.yaml").read_text())


def write_profile(folder: Path, data: dict | str, name: str = "cluster.yaml") -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    secrets = path.with_name(path.stem + ".secrets")
    fd = os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(FAKE_SECRETS.__dict__, f)
    return path


@pytest.fixture
def pbx_profile(tmp_path: Path) -> Path:
    """pbx-ha as a file with fake secrets beside it."""
    return write_profile(tmp_path, pbx_ha_data())


@pytest.fixture(autouse=True)
def _private_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Built-in profiles keep secrets in the user's state folder: keep tests out of it.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
