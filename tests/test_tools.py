"""The one table of host tools (builder/tools.py): setup.sh installs its packages, this
host has every tool it names (setup put them there: a missing one fails, never skips),
and `builder doctor` agrees."""

from __future__ import annotations

import subprocess
import sys

import pytest

from builder import tools
from builder.cli import main
from builder.errors import BuilderError
from tests.conftest import REPO


def _setup_packages() -> list[str]:
    # The very lines setup.sh reads its list with, run as it runs them: Debian's python3, no venv.
    lines = [ln for ln in (REPO / "scripts/setup.sh").read_text().splitlines()
             if ln.startswith(("list=$(", "mapfile -t packages"))]
    assert len(lines) == 2, lines
    script = "set -euo pipefail\n" + "\n".join(lines) + '\nprintf "%s\\n" "${packages[@]}"\n'
    proc = subprocess.run(["bash", "-c", script], env={"repo": str(REPO), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_setup_installs_the_tables_packages() -> None:
    assert _setup_packages() == tools.apt_packages()
    assert len(tools.apt_packages()) >= 40  # the whole table, not a stray line


def test_the_module_needs_nothing_but_the_standard_library() -> None:
    code = ("import sys; import builder.tools; "
            "print(' '.join(m for m in sys.modules if m != '__main__' and m.split('.')[0] not in sys.stdlib_module_names))")
    proc = subprocess.run(["/usr/bin/python3", "-S", "-c", code], env={"PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, check=True)
    assert sorted(proc.stdout.split()) == ["builder", "builder.errors", "builder.tools"]


def test_every_entry_is_well_formed() -> None:
    for t in tools.TOOLS:
        assert t.stages and set(t.stages) <= set(tools.STAGES), t
        assert t.why and t.package, t
        assert t.kind != "file" or t.name.startswith("/"), t
    names = [t.name for t in tools.TOOLS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("stage", sorted(tools.STAGES))
def test_this_host_has_every_tool_of(stage: str) -> None:
    # scripts/setup.sh ran on this host: whatever is missing is a real failure.
    assert [(t.name, t.package) for t in tools.missing(stage)] == []


def test_require_names_the_missing_tools_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = tools.Tool("no-such-tool-here", "no-such-package", ("iso",), "a test")
    monkeypatch.setattr(tools, "TOOLS", (*tools.TOOLS, gone))
    with pytest.raises(BuilderError) as e:
        tools.require("iso")
    assert e.value.exit_code == 1
    assert "no-such-tool-here" in e.value.message and "installer ISO" in e.value.message
    assert e.value.hint is not None
    assert "scripts/setup.sh" in e.value.hint and "apt-get install no-such-package" in e.value.hint
    tools.require("package")  # the other stages are unaffected
    with pytest.raises(ValueError):
        tools.missing("no-such-stage")


def test_doctor_passes_here(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for t in tools.TOOLS:
        assert t.name in out
    assert "MISSING" not in out


def test_python_dash_m_prints_the_sorted_package_list() -> None:
    proc = subprocess.run([sys.executable, "-m", "builder.tools", "apt-packages"], cwd=REPO,
                          capture_output=True, text=True, check=True)
    assert proc.stdout.split() == sorted(set(proc.stdout.split())) == tools.apt_packages()
    bad = subprocess.run([sys.executable, "-m", "builder.tools"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode != 0 and "usage" in bad.stderr
