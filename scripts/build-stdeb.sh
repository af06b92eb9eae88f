#!/bin/sh
# Build builder itself as a Debian package with stdeb: python3-builder_<version>-1_all.deb.
#   scripts/build-stdeb.sh [OUT_DIR]        (default: dist/)
# Needs python3-stdeb, dh-python, debhelper, python3-all, python3-setuptools (Debian's).
# The build runs in a temporary copy with a setup.py shim (stdeb drives setup.py), so the
# repository needs no setup.py of its own.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$repo/dist}" && cd "${1:-$repo/dist}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

mkdir "$work/src"
cp -r "$repo/builder" "$repo/pyproject.toml" "$work/src/"
[ -f "$repo/README.md" ] && cp "$repo/README.md" "$work/src/" || echo "builder" >"$work/src/README.md"
find "$work/src" -name __pycache__ -type d -prune -exec rm -rf {} +
printf 'from setuptools import setup\n\nsetup()\n' >"$work/src/setup.py"
# stdeb options: the Debian package names of the Python requirements, and the
# console script into /usr/bin (setuptools' entry point).
cat >"$work/src/stdeb.cfg" <<'CFG'
[DEFAULT]
Package3: python3-builder
Suite: unstable
Maintainer: builder maintainers <builder@invalid.invalid>
Depends3: python3-pydantic (>= 2.5), python3-yaml (>= 6), python3-jinja2 (>= 3.1), python3-rich (>= 13)
X-Python3-Version: >= 3.11
Section: admin
CFG

cd "$work/src"
# Debian's python3 and setuptools (not the venv): the package is for Debian's python3.
# nocheck: pybuild would run `unittest discover`, which only imports every
# module against the build host's python3 (no rich, no pydantic 2 on bookworm);
# the real tests are pytest's, and test_stdeb runs the package in a real root.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(date +%s)} DEB_BUILD_OPTIONS=nocheck \
    /usr/bin/python3 setup.py --command-packages=stdeb.command bdist_deb >"$work/build.log" 2>&1 || {
    tail -40 "$work/build.log" >&2
    exit 1
}
cp deb_dist/python3-builder_*_all.deb "$out/"
ls "$out"/python3-builder_*_all.deb
