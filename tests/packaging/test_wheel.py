"""An installed builder renders without a checkout: the wheel carries the template folders.

Builds the wheel from this checkout, installs it into a fresh venv outside the
checkout, and renders pbx-ha from there: the tree must match the golden files byte
for byte (the agent's Python files aside, as in tests/test_render.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.render import AGENT_DIR
from builder.templates import FOLDERS
from tests.conftest import FAKE_SECRETS, REPO

GOLDEN = REPO / "tests" / "golden" / "render" / "pbx-ha"


def _run(argv: list[str | Path], **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.slow
def test_an_installed_wheel_renders_pbx_ha_as_the_golden_files(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, REPO])
    (wheel,) = wheels.glob("builder-*.whl")
    listing = _run([sys.executable, "-m", "zipfile", "-l", wheel]).stdout
    for name in FOLDERS:
        assert f"builder/_data/{name}/" in listing, name  # copies, not links

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    _run([venv / "bin/pip", "install", "--quiet", wheel])
    state = tmp_path / "state"
    (state / "builder").mkdir(parents=True)
    secrets = state / "builder" / "pbx-ha.secrets"
    secrets.write_text(json.dumps(FAKE_SECRETS.__dict__))
    secrets.chmod(0o600)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "XDG_STATE_HOME": str(state), "PYTHONPATH": ""}
    _run([venv / "bin/builder", "render", "--profile", "pbx-ha", "--out", "tree"], cwd=work, env=env)
    where = _run([venv / "bin/python", "-c", "import builder; print(builder.__file__)"], cwd=work, env=env).stdout
    assert not where.startswith(str(REPO)), where

    tree = work / "tree"
    rendered = {str(p.relative_to(tree)): p.read_bytes() for p in tree.rglob("*")
                if p.is_file() and not str(p.relative_to(tree)).startswith(AGENT_DIR.lstrip("/"))
                and p.name != ".builder-output"}
    golden = {str(p.relative_to(GOLDEN)).removesuffix(".golden"): p.read_bytes() for p in GOLDEN.rglob("*.golden")}
    golden.pop("MODES")
    assert sorted(rendered) == sorted(golden)
    for rel, data in golden.items():
        assert rendered[rel] == data, rel
