"""Output paths: no path option destroys what it names; outputs appear atomically.

Every hostile --out is refused with exit 2 and one message naming the option and
the value, before anything is written (not even the secrets file): the whole
test folder (profile, home folder, state folder, neighbours) is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from builder.cli import main
from tests.conftest import REPO, pbx_ha_data, write_profile

Snapshot = dict[str, tuple[object, ...]]
MARKER = ".builder-output"  # builder.outdir.MARKER: in a folder builder made


def snapshot(root: Path) -> Snapshot:
    """Every entry under root: kind, mode and content hash (links by their target, not followed)."""
    out: Snapshot = {".": ("dir", stat.S_IMODE(root.lstat().st_mode))}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(folder, name)
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), hashlib.sha256(p.read_bytes()).hexdigest())
    return out


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/proj (the current folder): cluster.yaml without secrets and hostile neighbours;
    tmp/home (HOME), tmp/state (XDG_STATE_HOME), tmp/cache (XDG_CACHE_HOME)."""
    for name in ("home", "state", "cache", "elsewhere", "proj"):
        (tmp_path / name).mkdir()
    (tmp_path / "home" / ".bashrc").write_text("# the user's\n")
    (tmp_path / "elsewhere" / "keep.txt").write_text("not builder's\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    proj = tmp_path / "proj"
    write_profile(proj, pbx_ha_data()).with_name("cluster.secrets").unlink()
    (proj / "notes.txt").write_text("the user's notes\n")
    (proj / "foreign").mkdir()
    (proj / "foreign" / "data.txt").write_text("the user's data\n")
    (proj / "link-to-dir").symlink_to(tmp_path / "elsewhere")
    (proj / "link-to-profile").symlink_to("cluster.yaml")
    (proj / "dangling").symlink_to("nowhere")
    (proj / "by-package").mkdir()
    (proj / "by-package" / MARKER).write_text(json.dumps({"command": "package", "kind": "into"}))
    (proj / "by-package" / "x.deb").write_text("a package\n")
    monkeypatch.chdir(proj)
    return tmp_path


HOSTILE_OUT: dict[str, Callable[[Path], str]] = {
    "empty": lambda t: "",
    "dot": lambda t: ".",
    "dotdot": lambda t: "..",
    "tilde": lambda t: "~",
    "root": lambda t: "/",
    "proc": lambda t: "/proc/x",
    "sys": lambda t: "/sys/builder-out",
    "home": lambda t: str(t / "home"),
    "symlink-to-folder": lambda t: "link-to-dir",
    "symlink-to-profile": lambda t: "link-to-profile",
    "dangling-symlink": lambda t: "dangling",
    "regular-file": lambda t: "notes.txt",
    "the-profile": lambda t: "cluster.yaml",
    "the-secrets-file": lambda t: "cluster.secrets",
    "parent-of-profile": lambda t: str(t),
    "parent-spelled-oddly": lambda t: "sub/../..",
    "profile-folder-by-another-name": lambda t: "../proj",
    "non-empty-foreign-folder": lambda t: "foreign",
    "parent-is-a-file": lambda t: "notes.txt/out",
    "newline": lambda t: "out\nx",
    "state-folder": lambda t: str(t / "state"),
}


def _refused(argv: list[str], option: str, value: str, site: Path, capsys: pytest.CaptureFixture[str]) -> str:
    before = snapshot(site)
    capsys.readouterr()
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert f"{option} {value!r}" in err, err
    assert err.count("builder: error:") == 1 and "Traceback" not in err and "internal" not in err, err
    assert snapshot(site) == before  # nothing written, moved or deleted
    assert not (site / "proj" / "cluster.secrets").exists()
    assert not list((site / "state").iterdir())
    return err


@pytest.mark.parametrize("command", ["render", "package", "repo", "image"])
@pytest.mark.parametrize("case", sorted(HOSTILE_OUT))
def test_hostile_out_is_refused_and_nothing_changes(site: Path, capsys: pytest.CaptureFixture[str],
                                                    command: str, case: str) -> None:
    value = HOSTILE_OUT[case](site)
    profile = "pbx-ha" if case == "state-folder" else "cluster.yaml"
    _refused([command, "-p", profile, "-o", value], "--out", value, site, capsys)


@pytest.mark.parametrize("command", ["package", "image"])
def test_render_output_is_not_added_to(site: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    assert main(["render", "-p", "cluster.yaml", "-o", "rendered"]) == 0
    err = _refused_keeping_secrets([command, "-p", "cluster.yaml", "-o", "rendered"], site, capsys)
    assert "builder render" in err


def _refused_keeping_secrets(argv: list[str], site: Path, capsys: pytest.CaptureFixture[str]) -> str:
    before = snapshot(site)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--out" in err and err.count("builder: error:") == 1, err
    assert snapshot(site) == before
    return err


def test_render_does_not_replace_another_commands_folder(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(["render", "-p", "cluster.yaml", "-o", "by-package"], "--out", "by-package", site, capsys)
    assert "builder package" in err


def test_render_replaces_only_its_own_folder(site: Path) -> None:
    (site / "proj" / "empty").mkdir()
    assert main(["render", "-p", "cluster.yaml", "-o", "empty"]) == 0  # an empty folder is fine
    out = site / "proj" / "empty"
    assert (out / "etc/ha.d/ha.cf").is_file()
    assert json.loads((out / MARKER).read_text())["command"] == "render"
    (out / "etc" / "stale").write_text("from the last render")
    assert main(["render", "-p", "cluster.yaml", "-o", "empty"]) == 0  # builder's own: replaced whole
    assert not (out / "etc" / "stale").exists() and (out / "etc/ha.d/ha.cf").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


HOSTILE_FILE = {k: v for k, v in HOSTILE_OUT.items() if k not in ("home", "state-folder", "parent-of-profile")}


@pytest.mark.parametrize("case", sorted(HOSTILE_FILE))
def test_schema_out_never_overwrites_what_builder_did_not_write(site: Path, capsys: pytest.CaptureFixture[str],
                                                                case: str) -> None:
    value = HOSTILE_FILE[case](site)
    if case == "the-secrets-file":
        value = "cluster.yaml"  # schema has no profile: any foreign file is refused the same way
    _refused(["schema", "-o", value], "--out", value, site, capsys)


def test_schema_out_rewrites_its_own_file(site: Path) -> None:
    assert main(["schema", "-o", "schema.json"]) == 0
    assert main(["schema", "--markdown", "-o", "schema.json"]) == 0
    assert (site / "proj" / "schema.json").read_text().startswith("# Profile reference")
    assert not [p for p in (site / "proj").iterdir() if p.name.startswith(".schema")]


@pytest.mark.parametrize("case", ["empty", "dot", "tilde", "home", "non-empty-foreign-folder", "symlink-to-folder",
                                  "the-profile", "parent-is-a-file", "newline"])
def test_image_cache_dir_is_checked_up_front(site: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    value = HOSTILE_OUT[case](site)
    _refused(["image", "-p", "cluster.yaml", "-o", "images", "--cache-dir", value], "--cache-dir", value, site, capsys)


def _fake_image(site: Path) -> Path:
    image = site / "proj" / "out" / "pbx-ha.qcow2"
    image.parent.mkdir()
    (image.parent / MARKER).write_text(json.dumps({"command": "image", "kind": "into"}))  # as image made it
    image.write_bytes(b"QFI\xfb" + bytes(60))
    return image


@pytest.mark.parametrize("case", ["empty", "dot", "non-empty-foreign-folder", "symlink-to-folder", "the-profile",
                                  "dangling-symlink", "regular-file", "parent-is-a-file", "newline", "proc"])
def test_lab_report_is_checked_up_front(site: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    _fake_image(site)
    value = HOSTILE_OUT[case](site)
    _refused(["lab", "status", "-p", "cluster.yaml", "--report", value], "--report", value, site, capsys)


@pytest.mark.parametrize("option", ["--image", "--install-from-iso"])
@pytest.mark.parametrize("value", ["", ".", "foreign", "cluster.yaml", "dangling", "/proc/x", "a,b", "notes.txt"])
def test_lab_inputs_are_checked_up_front(site: Path, capsys: pytest.CaptureFixture[str], option: str,
                                         value: str) -> None:
    if option == "--install-from-iso" and value == "":
        value = "out/pbx-ha-installer.iso"  # the default: missing
        _refused(["lab", "run", "-p", "cluster.yaml", option], option, value, site, capsys)
    else:
        _refused(["lab", "run", "-p", "cluster.yaml", f"{option}={value}"], option, value, site, capsys)


def test_lab_consoles_and_work_folders_are_checked(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fake_image(site)
    work = site / "cache" / "builder" / "lab" / "pbx-ha"
    work.mkdir(parents=True)
    (work / "precious.txt").write_text("not the lab's\n")
    _refused_option(["lab", "down", "-p", "cluster.yaml"], "the lab's work folder", site, capsys)
    (work / "precious.txt").unlink()
    (site / "proj" / "out" / "lab-consoles").write_text("a file where the consoles go\n")
    _refused_option(["lab", "run", "-p", "cluster.yaml"], "the lab's console folder", site, capsys)


def _refused_option(argv: list[str], option: str, site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(site)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert option in err and err.count("builder: error:") == 1, err
    assert snapshot(site) == before and not (site / "proj" / "cluster.secrets").exists()


@pytest.mark.parametrize("value", ["", "x1", "1 2", "1\n", "1;rm", "-1"])
def test_bad_build_number_is_bad_input_before_anything_is_written(site: Path, capsys: pytest.CaptureFixture[str],
                                                                  value: str) -> None:
    for command in ("package", "repo", "image"):
        _refused([command, "-p", "cluster.yaml", "-o", "new", "--build-number", value], "--build-number", value,
                 site, capsys)


def test_every_command_with_its_defaults_from_a_fresh_folder(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fresh = site / "fresh"
    fresh.mkdir()
    os.chdir(fresh)  # the fixture's monkeypatch.chdir restores the current folder
    assert main(["validate", "-p", "pbx-ha"]) == 0
    assert main(["secrets", "-p", "pbx-ha"]) == 0
    assert (site / "state" / "builder" / "pbx-ha.secrets").is_file()
    assert main(["schema"]) == 0
    assert main(["package", "-p", "pbx-ha"]) == 0
    assert len(list((fresh / "out").glob("pbx-ha-cluster_*_all.deb"))) == 1
    assert len(list((fresh / "out").glob("pbx-ha-cluster-*.noarch.rpm"))) == 1
    assert main(["repo", "-p", "pbx-ha"]) == 0  # the same out/ as package's
    assert (fresh / "out" / "apt" / "Packages").is_file()
    assert (fresh / "out" / "yum" / "repodata" / "repomd.xml").is_file()
    assert main(["render", "-p", "pbx-ha", "-o", "out/render"]) == 0
    assert (fresh / "out" / "render" / "etc" / "ha.d" / "ha.cf").is_file()
    assert not [p for p in fresh.rglob(".*") if p.name != MARKER], "temporary leftovers"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".out."))


def test_interrupt_inside_fill_keeps_the_old_tree(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from builder.staging import Tree

    assert main(["render", "-p", "cluster.yaml", "-o", "out"]) == 0
    old = snapshot(site / "proj" / "out")
    real = Tree.write

    def half(self: Tree, root: Path) -> None:
        real(Tree(self.files[: len(self.files) // 2]), root)
        raise KeyboardInterrupt

    monkeypatch.setattr(Tree, "write", half)
    assert main(["render", "-p", "cluster.yaml", "-o", "out"]) == 130
    assert snapshot(site / "proj" / "out") == old
    assert _leftovers(site / "proj") == []


def test_interrupt_between_the_renames_waits_for_the_new_tree(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["render", "-p", "cluster.yaml", "-o", "out"]) == 0
    (site / "proj" / "out" / "etc" / "stale").write_text("only in the old tree")
    real = os.rename

    def rename(src: object, dst: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C right between "old aside" and "new in"
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", rename)
    assert main(["render", "-p", "cluster.yaml", "-o", "out"]) == 130
    monkeypatch.setattr(os, "rename", real)
    out = site / "proj" / "out"
    assert (out / "etc/ha.d/ha.cf").is_file() and not (out / "etc" / "stale").exists()  # the new tree, whole
    assert _leftovers(site / "proj") == []


CHILD = """
import os, sys, time
import builder.staging as staging
from builder.cli import main
where = sys.argv[1]
if where == "fill":
    real = staging.Tree.write
    def write(self, root):
        real(self, root)
        print("PAUSE", flush=True)
        time.sleep(10)
    staging.Tree.write = write
else:
    real_rename = os.rename
    def rename(a, b):
        print("PAUSE", flush=True)
        time.sleep(0.5)
        real_rename(a, b)
    os.rename = rename
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("where", ["fill", "swap"])
def test_a_signal_leaves_the_old_tree_or_the_new_one(site: Path, sig: signal.Signals, where: str) -> None:
    proj = site / "proj"
    assert main(["render", "-p", "cluster.yaml", "-o", "out"]) == 0
    (proj / "out" / "etc" / "stale").write_text("only in the old tree")
    old = snapshot(proj / "out")
    child = subprocess.Popen([sys.executable, "-c", CHILD, where, "render", "-p", "cluster.yaml", "-o", "out"],
                             cwd=proj, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    assert child.stdout is not None
    assert child.stdout.readline() == "PAUSE\n"
    time.sleep(0.2)
    child.send_signal(sig)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "Traceback" not in err, err
    if where == "fill":
        assert snapshot(proj / "out") == old
    else:  # the swap had begun: it finishes
        assert not (proj / "out" / "etc" / "stale").exists() and (proj / "out" / "etc/ha.d/ha.cf").is_file()
    assert _leftovers(proj) == []


def _readonly_run(folder: Path, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run builder with `folder` read-only: a read-only bind mount for root (chmod does not stop
    root), chmod 0555 otherwise."""
    cmd = [sys.executable, "-m", "builder", *argv]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        finally:
            folder.chmod(0o755)
    # CI runs as root with util-linux (setup installs it): no mount namespace is a real failure.
    assert subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0, "unshare -m failed"
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(folder), *cmd], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_out_in_a_read_only_folder_is_one_clear_line(site: Path) -> None:
    ro = site / "ro"
    ro.mkdir()
    proc = _readonly_run(ro, ["render", "-p", "cluster.yaml", "-o", str(ro / "out")], site / "proj")
    assert proc.returncode == 2, proc.stderr
    assert f"--out {str(ro / 'out')!r}" in proc.stderr and "Traceback" not in proc.stderr
    assert not (site / "proj" / "cluster.secrets").exists()


def test_profile_in_a_read_only_folder_is_one_clear_line(site: Path) -> None:
    proj = site / "proj"
    proc = _readonly_run(proj, ["render", "-p", "cluster.yaml", "-o", str(site / "out")], proj)
    assert proc.returncode == 2, proc.stderr
    assert "secrets file" in proc.stderr and proc.stderr.count("builder: error:") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (site / "out").exists()
