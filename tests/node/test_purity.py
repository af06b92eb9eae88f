"""The node agent is standard-library only and independent of the build side."""

from __future__ import annotations

import ast
import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import builder.node

from .fakes import cluster_doc

NODE_DIR = Path(builder.node.__file__).parent
BUILDER_INIT = NODE_DIR.parent / "__init__.py"


def imports(path: Path) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, 0) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


@pytest.mark.parametrize("path", sorted(NODE_DIR.rglob("*.py")), ids=lambda p: p.name)
def test_only_stdlib_and_builder_node_imports(path: Path) -> None:
    for module, level in imports(path):
        assert level == 0, f"{path.name}: relative import of {module!r}"
        top = module.split(".")[0]
        if top == "builder":
            assert module == "builder.node" or module.startswith("builder.node."), (
                f"{path.name} imports {module}: the node agent must not use the build side")
        else:
            assert top in sys.stdlib_module_names, f"{path.name} imports non-stdlib {module}"


def test_builder_init_stays_import_free() -> None:
    assert imports(BUILDER_INIT) == []


def interpreters() -> list[str]:
    found = {sys.executable, "/usr/bin/python3"}
    found.update(glob.glob("/usr/bin/python3.1[1-9]"))
    found.update(glob.glob("/root/.pyenv/versions/3.1[1-9]*/bin/python3"))
    return sorted(p for p in found if Path(p).exists())


@pytest.mark.parametrize("python", interpreters())
def test_runs_from_a_private_library_path(tmp_path: Path, python: str) -> None:
    """As on a node: PYTHONPATH=/usr/lib/cluster-agent holding only builder/__init__.py
    and builder/node/, no site-packages (-S), on every python3 found here."""
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2] >= (3, 11))"],
                             capture_output=True, text=True).stdout.strip()
    if version != "True":
        pytest.skip(f"{python} is older than 3.11")
    lib = tmp_path / "usr/lib/cluster-agent"
    (lib / "builder").mkdir(parents=True)
    shutil.copy(BUILDER_INIT, lib / "builder/__init__.py")
    shutil.copytree(NODE_DIR, lib / "builder/node", ignore=shutil.ignore_patterns("__pycache__"))
    env = {"PYTHONPATH": str(lib), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([python, "-S", "-m", "builder.node", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=60)

    r = run("--help")
    assert r.returncode == 0, r.stderr
    assert "provision" in r.stdout and "status" in r.stdout
    mods = [f"builder.node.{p.stem}" for p in NODE_DIR.glob("*.py") if p.stem != "__main__"]
    r = subprocess.run([python, "-S", "-c", "import " + ", ".join(mods)], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # A whole run with the real runner on an empty root: no identity, exit 3, nothing written.
    root = tmp_path / "root"
    (root / "etc/cluster").mkdir(parents=True)
    (root / "etc/cluster/cluster.json").write_text(json.dumps(cluster_doc()))
    (root / "proc").mkdir()
    (root / "proc/cmdline").write_text("ro quiet\n")
    r = run("--root", str(root), "provision")
    assert r.returncode == 3, r.stderr
    assert "cannot tell which cluster node this is" in r.stderr
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == [
        "etc", "etc/cluster", "etc/cluster/cluster.json", "proc", "proc/cmdline"]
