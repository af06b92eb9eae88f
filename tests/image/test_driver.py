"""Fast tests of the image driver's parts: mkosi lookup, log streaming, formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import BuilderError, InputError
from builder.image import find_mkosi, parse_formats
from builder.image.build import _mkosi_stage, mkosi_argv
from builder.image.stream import run_logged


def _fake_mkosi(folder: Path, version: str) -> Path:
    pkg = folder / "usr/lib/python3/dist-packages/mkosi"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(f"print('mkosi {version}')\n")
    return folder


def test_finds_the_unpacked_mkosi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUILDER_MKOSI_TOOLS_TREE", raising=False)
    tool = find_mkosi(_fake_mkosi(tmp_path, "25.3"))
    assert tool.version == "25.3" and tool.major == 25
    assert tool.argv[1:] == ("-m", "mkosi")
    assert tool.env["PYTHONPATH"].endswith("usr/lib/python3/dist-packages")
    assert tool.needs_tools_tree
    assert "25.3" in tool.describe() and "tools tree" in tool.describe()
    argv = mkosi_argv(tool, tmp_path / "cfg", tmp_path / "cache")
    assert argv[-1] == "build" and "--force" in argv
    assert argv[argv.index("--package-cache-dir") + 1] == str(tmp_path / "cache/packages")


def test_old_mkosi_is_refused_with_a_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(BuilderError) as err:
        find_mkosi(_fake_mkosi(tmp_path, "14"))
    assert "mkosi 14" in err.value.message
    assert err.value.hint and "setup-mkosi.sh" in err.value.hint


def test_failed_command_reports_the_command_and_the_tail(tmp_path: Path) -> None:
    log = tmp_path / "log"
    lines: list[str] = []
    script = "for i in $(seq 1 100); do echo line$i; done; echo boom >&2; exit 3"
    with pytest.raises(BuilderError) as err:
        run_logged(["sh", "-c", script], log, on_line=lines.append)
    assert "exit code 3" in err.value.message and "sh -c" in err.value.message
    assert "boom" in err.value.message and "line100" in err.value.message
    assert "line1\n" not in err.value.message  # only the tail
    assert len(lines) == 101 and "line1\n" in log.read_text()
    assert err.value.hint and str(log) in err.value.hint


def test_formats() -> None:
    assert parse_formats("all") == ("raw", "qcow2")
    assert parse_formats(["qcow2", "raw,qcow2"]) == ("qcow2", "raw")
    assert parse_formats("qcow2,iso") == ("qcow2", "iso")  # the installer ISO: by name, not in "all"
    with pytest.raises(InputError):
        parse_formats("vmdk")


def test_mkosi_stage_lines() -> None:
    assert _mkosi_stage("‣ Installing Debian") == "Installing Debian"
    assert _mkosi_stage("Unpacking foo ...") is None
    assert _mkosi_stage("  ‣  nested") is None
