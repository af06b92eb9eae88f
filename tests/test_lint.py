"""ruff and mypy are part of the tests: a lint error fails the build like a bug."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_ruff() -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "builder", "tests", "scripts"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shellcheck_project_scripts() -> None:
    scripts = [*sorted(str(p) for p in (REPO / "scripts").glob("*.sh")), str(REPO / ".ci" / "run"),
               str(REPO / "scripts/stdeb/postinst"), str(REPO / "scripts/stdeb/prerm")]
    proc = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
