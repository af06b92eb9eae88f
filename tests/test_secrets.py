"""Secrets: generated once, 0600, identical across renders, never printed."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml

from builder.cli import main
from builder.profile.load import resolve
from builder.profile.secrets import load_or_create, secrets_path
from tests.conftest import pbx_ha_data, write_profile


def _profile_without_secrets(tmp_path: Path) -> Path:
    data = pbx_ha_data()
    data["alerts"]["smtp"] |= {"port": 587, "starttls": True, "user": "pbx-ha@example.invalid"}
    path = write_profile(tmp_path, data)
    path.with_name("cluster.secrets").unlink()
    return path


def test_created_once_0600_beside_the_profile(tmp_path: Path) -> None:
    profile = _profile_without_secrets(tmp_path)
    first, path, created = load_or_create(resolve(str(profile)))
    assert created and path == tmp_path / "cluster.secrets"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, _, created_again = load_or_create(resolve(str(profile)))
    assert not created_again and again == first
    assert len(first.heartbeat_key) == 64  # 256 bits, hex
    assert len(first.drbd_secret) < 64  # DRBD's shared-secret limit


def test_builtin_profile_secrets_live_in_the_state_folder() -> None:
    path = secrets_path(resolve("pbx-ha"))
    assert path == Path(os.environ["XDG_STATE_HOME"]) / "builder" / "pbx-ha.secrets"


def test_each_cluster_gets_its_own(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, _, _ = load_or_create(resolve(str(_profile_without_secrets(tmp_path / "a"))))
    b, _, _ = load_or_create(resolve(str(_profile_without_secrets(tmp_path / "b"))))
    assert a.heartbeat_key != b.heartbeat_key and a.drbd_secret != b.drbd_secret


def test_refuses_a_secrets_file_others_can_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = write_profile(tmp_path, pbx_ha_data())
    (tmp_path / "cluster.secrets").chmod(0o644)
    assert main(["render", "--profile", str(profile), "--out", str(tmp_path / "out")]) == 2
    assert "chmod 600" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_no_command_prints_a_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    profile = str(_profile_without_secrets(tmp_path))
    runs = [
        ["secrets", "--profile", profile],
        ["validate", "--profile", profile],
        ["render", "--profile", profile, "--out", str(tmp_path / "out")],
        ["--debug", "render", "--profile", profile, "--out", str(tmp_path / "out")],
        ["schema"],
        ["schema", "--markdown"],
    ]
    for argv in runs:
        assert main(argv) == 0, argv
    monkeypatch.setattr("sys.stdin", _Stdin("FAKE-relay-password-typed-by-user\n"))
    assert main(["secrets", "--profile", profile, "--set-smtp-password"]) == 0
    assert main(["render", "--profile", profile, "--out", str(tmp_path / "out")]) == 0

    printed = capsys.readouterr()
    values = json.loads((tmp_path / "cluster.secrets").read_text())
    assert values["smtp_password"] == "FAKE-relay-password-typed-by-user"
    for value in values.values():
        assert value not in printed.out and value not in printed.err
    assert "FAKE-relay-password-typed-by-user" in (tmp_path / "out/etc/msmtprc").read_text()
    assert stat.S_IMODE((tmp_path / "cluster.secrets").stat().st_mode) == 0o600


def test_secrets_repr_hides_values(tmp_path: Path) -> None:
    value, _, _ = load_or_create(resolve(str(_profile_without_secrets(tmp_path))))
    assert value.heartbeat_key not in repr(value) and value.heartbeat_key not in str(value)


def _one_clear_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.count("builder: error:") == 1 and "Traceback" not in err and "internal" not in err, err
    assert "hint:" in err and "--debug" not in err, err
    return err


def test_a_secrets_folder_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = _profile_without_secrets(tmp_path)
    (tmp_path / "cluster.secrets").mkdir()
    for argv in (["secrets", "-p", str(profile)], ["render", "-p", str(profile), "-o", str(tmp_path / "out")]):
        err = _one_clear_line(argv, capsys)
        assert "cluster.secrets is not a file" in err
    assert not (tmp_path / "out").exists()


def test_a_dangling_secrets_link_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = _profile_without_secrets(tmp_path)
    (tmp_path / "cluster.secrets").symlink_to("gone")
    assert "cannot be read" in _one_clear_line(["secrets", "-p", str(profile)], capsys)
    assert (tmp_path / "cluster.secrets").is_symlink()


def test_an_unwritable_secrets_folder_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Root ignores a read-only mode, so the failure is simulated (tests/test_outputs.py mounts one read-only).
    profile = _profile_without_secrets(tmp_path)

    def read_only(*_args: object, **_kw: object) -> int:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("builder.profile.secrets.os.open", read_only)
    err = _one_clear_line(["render", "-p", str(profile), "-o", str(tmp_path / "out")], capsys)
    assert "cannot write the secrets file" in err and "Read-only file system" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.yaml"]


def test_an_unreadable_secrets_file_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    profile = write_profile(tmp_path, pbx_ha_data())

    real = Path.read_text

    def unreadable(self: Path, *args: object, **kw: object) -> str:
        if self.suffix == ".secrets":
            raise PermissionError(13, "Permission denied")
        return real(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", unreadable)
    assert "cannot be read (Permission denied)" in _one_clear_line(["secrets", "-p", str(profile)], capsys)


def test_a_profile_named_like_a_secrets_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "cluster.secrets"
    profile.write_text(yaml.safe_dump(pbx_ha_data(), sort_keys=False))
    before = profile.read_bytes()
    assert "named like a secrets file" in _one_clear_line(["render", "-p", str(profile), "-o", str(tmp_path / "out")],
                                                          capsys)
    assert profile.read_bytes() == before and not (tmp_path / "out").exists()


class _Stdin:
    def __init__(self, text: str) -> None:
        self.text = text

    def isatty(self) -> bool:
        return False

    def readline(self) -> str:
        return self.text
