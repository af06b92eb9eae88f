"""Profiles that are not well-formed YAML files: exit 2, one short message, nothing echoed or written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from builder.cli import main
from tests.conftest import pbx_ha_data


def _validate(path: Path | str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["validate", "--profile", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    return err


def _bomb(levels: int = 9) -> str:
    text = "cluster: &a0 [x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, levels + 1):
        text += f"n{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n"
    return text


CASES = {
    "alias-bomb": (_bomb(), "YAML anchors and aliases"),
    "alias-cycle": ("cluster: &x [*x]\n", "refers to itself"),
    "deep-lists": ("cluster: " + "[" * 3000 + "]" * 3000 + "\n", "nested"),
    "deep-mappings": ("".join("  " * i + f"k{i}:\n" for i in range(60)) + "  " * 60 + "x: 1\n", "nested"),
    "a-list": ("- cluster\n- nodes\n", "must be a YAML mapping"),
    "a-scalar": ("just words\n", "must be a YAML mapping"),
    "empty": ("", "must be a YAML mapping"),
    "python-tag": ("cluster: !!python/object/apply:os.system [reboot]\n", "not valid YAML"),
    "unclosed": ("cluster: [unclosed\n", "not valid YAML"),
}


@pytest.mark.parametrize(("text", "expected"), CASES.values(), ids=CASES.keys())
def test_malformed_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    err = _validate(path, capsys)
    assert expected in err, err
    assert len(err) < 2000, "a short message, not the document expanded"


def test_non_string_keys_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(pbx_ha_data(), sort_keys=False) + "1: one\nnull: two\n")
    err = _validate(path, capsys)
    assert "key '1' is not a setting name" in err, err
    path.write_text(yaml.safe_dump(pbx_ha_data(), sort_keys=False) + "? [a, b]\n: two\n")
    assert "is not a setting name" in _validate(path, capsys)


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "utf-32"])
def test_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(yaml.safe_dump(pbx_ha_data()).replace("kava1", "kavä1").encode(encoding))
    err = _validate(path, capsys)
    assert "UTF-8" in err and "hint" in err, err


def test_a_huge_value_is_not_echoed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = pbx_ha_data()
    data["cluster"]["name"] = "a" * 200_000
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    err = _validate(path, capsys)
    assert "cluster.name" in err and len(err) < 2000, len(err)


def test_a_huge_file_is_refused_unread(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("cluster:\n  name: " + "a" * (2 << 20) + "\n")
    assert "too big" in _validate(path, capsys)


def test_a_folder_a_device_and_a_fifo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert "is a folder" in _validate(tmp_path, capsys)
    assert "not a regular file" in _validate("/dev/zero", capsys)
    assert "not a regular file" in _validate(fifo, capsys)  # opening it would hang


def test_a_symlink_to_another_file_does_not_print_its_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shadow = tmp_path / "shadow"
    secret = "$y$j9T$FAKEsalt$FAKEhashFAKEhashFAKEhash"
    shadow.write_text(f"root:{secret}:20000:0:99999:7:::\nops:{secret}:20000:0:99999:7:::\n")
    link = tmp_path / "p.yaml"
    link.symlink_to(shadow)
    err = _validate(link, capsys)
    assert "FAKEhash" not in err and "root:" not in err, err
    # The same lines among real settings: named as unknown keys without their text.
    text = yaml.safe_dump(pbx_ha_data()) + shadow.read_text()
    link.unlink()
    link.write_text(text)
    err = _validate(link, capsys)
    assert "FAKEhash" not in err and "unknown setting" in err, err


def test_too_many_problems_are_summarised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = pbx_ha_data()
    for i in range(60):
        data[f"unknown{i}"] = i
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    err = _validate(path, capsys)
    assert "60 problems" in err and "... and 35 more" in err, err
