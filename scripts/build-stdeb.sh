#!/bin/sh
# Build builder itself as a Debian package with stdeb: python3-builder_<version>-1_<arch>.deb,
# installable with apt on Debian 12 (bookworm) and Debian 13 (trixie).
#   scripts/build-stdeb.sh [OUT_DIR]        (default: dist/)
# Needs python3-stdeb, dh-python, debhelper, python3-all, python3-setuptools (Debian's),
# and the project's .venv (scripts/setup.sh) for its pip, which downloads the vendored wheels.
#
# builder needs pydantic >= 2.5. Debian 13 has it; Debian 12 only has pydantic 1.10 and
# no backport. So the package:
#   - depends on "python3-pydantic (>= 2.5) | python3 (<< 3.12)": on Debian 13
#     (python3 3.13) apt installs Debian's pydantic; on Debian 12 (python3 3.11) the
#     second alternative holds and nothing pydantic is required;
#   - carries pydantic 2 + pydantic_core (compiled for CPython 3.11, hence
#     Architecture: any, built as the host's architecture) + typing_extensions,
#     annotated_types, typing_inspection in /usr/lib/python3-builder/vendor;
#   - installs scripts/stdeb/builder as /usr/bin/builder: it puts the vendor folder
#     first on sys.path, for builder's process only, when the system's pydantic is
#     missing or older than 2.5 (Debian 12), and leaves sys.path alone otherwise.
# The build runs in a temporary copy with a setup.py shim (stdeb drives setup.py), so the
# repository needs no setup.py of its own.
set -eu

# The vendored set, pinned: pydantic as in the venv (pyproject: pydantic>=2.5) and the
# exact versions its metadata requires. Bump them together.
VENDOR_PINS="pydantic==2.14.4 pydantic-core==2.50.5 typing-extensions==4.16.0 annotated-types==0.8.0 typing-inspection==0.4.5"
VENDOR_DIR=/usr/lib/python3-builder/vendor

repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$repo/dist}" && cd "${1:-$repo/dist}" && pwd)
pip=${PIP:-$repo/.venv/bin/pip}
[ -x "$pip" ] || { echo "no pip at $pip: run scripts/setup.sh first (or set PIP=)" >&2; exit 1; }
arch=$(dpkg --print-architecture)
case $arch in
amd64) platform=manylinux2014_x86_64 ;;
arm64) platform=manylinux2014_aarch64 ;;
*) echo "no pydantic_core wheel mapped for architecture $arch" >&2; exit 1 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

mkdir "$work/src"
# -L: builder/_data links to the top-level template folders; the package carries copies.
cp -rL "$repo/builder" "$repo/pyproject.toml" "$work/src/"
[ -f "$repo/README.md" ] && cp "$repo/README.md" "$work/src/" || echo "builder" >"$work/src/README.md"
find "$work/src" -name __pycache__ -type d -prune -exec rm -rf {} +
printf 'from setuptools import setup\n\nsetup()\n' >"$work/src/setup.py"
# stdeb options: the Debian package names of the Python requirements (pydantic is
# handled below), and the console script into /usr/bin (replaced below by the wrapper).
cat >"$work/src/stdeb.cfg" <<'CFG'
[DEFAULT]
Package3: python3-builder
Suite: unstable
Maintainer: builder maintainers <builder@invalid.invalid>
Depends3: python3-pydantic (>= 2.5) | python3 (<< 3.12), python3-yaml (>= 6), python3-jinja2 (>= 3.1), python3-rich (>= 13)
X-Python3-Version: >= 3.11
Section: admin
CFG

cd "$work/src"
# 1. stdeb makes the Debian source package (debian/ from setup.py and stdeb.cfg).
# Debian's python3 and setuptools (not the venv): the package is for Debian's python3.
/usr/bin/python3 setup.py --command-packages=stdeb.command sdist_dsc >"$work/build.log" 2>&1 || {
    tail -40 "$work/build.log" >&2
    exit 1
}
set -- deb_dist/builder-*/debian
[ -d "$1" ] || { echo "stdeb made no deb_dist/builder-*/debian" >&2; exit 1; }
pkg=$(cd "$1/.." && pwd)

# 2. The vendored pydantic 2, unpacked from the wheels for CPython 3.11.
# shellcheck disable=SC2086 # VENDOR_PINS is a word list
"$pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --implementation cp --python-version 3.11 --abi cp311 --platform "$platform" \
    -d "$work/wheels" $VENDOR_PINS 2>"$work/pip.log" || { cat "$work/pip.log" >&2; exit 1; }
mkdir -p "$pkg/vendor"
for whl in "$work"/wheels/*.whl; do
    /usr/bin/python3 -m zipfile -e "$whl" "$pkg/vendor/"
done
ls "$pkg"/vendor/pydantic_core/_pydantic_core.cpython-311-*.so >/dev/null
install -m 0755 "$repo/scripts/stdeb/builder" "$pkg/debian/builder-wrapper"
/usr/bin/python3 "$repo/scripts/stdeb/copyright.py" "$pkg"

# 3. debian/ changes stdeb has no option for: an arch-dependent package (the .so) with
# its shared-library dependencies, a short description, debian/copyright (builder's and the
# vendored licenses), the wrapper, the vendor folder, the maintainer scripts that
# byte-compile it and lintian overrides (with their reasons).
/usr/bin/python3 - "$pkg/debian/control" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
text = text.replace("Homepage: None\n", "")
text = re.sub(r"(?m)^Architecture: all$", "Architecture: any", text)
text = re.sub(r"(?m)^(Depends: \$\{misc:Depends\}, \$\{python3:Depends\}, )", r"\1${shlibs:Depends}, ", text)
binary = text.index("\nPackage: ")
head, tail = text[:binary], text[binary:]
tail = tail[: tail.index("\nDescription: ")] + (
    "\nDescription: build zero-touch two-node HA appliances from one YAML profile\n"
    " builder validates a cluster profile (two nodes, DRBD, heartbeat, a virtual\n"
    " IP, services, alerts) and renders the node configuration, the cluster\n"
    " packages (.deb, .rpm), node images and a QEMU lab.\n"
    " .\n"
    " On Debian 12 it runs with a private copy of pydantic 2 (Debian 12 has 1.10).\n"
)
open(path, "w").write(head + tail)
PY
install -m 0755 "$repo/scripts/stdeb/postinst" "$pkg/debian/python3-builder.postinst"
install -m 0755 "$repo/scripts/stdeb/prerm" "$pkg/debian/python3-builder.prerm"
install -m 0644 "$repo/scripts/stdeb/lintian-overrides" "$pkg/debian/python3-builder.lintian-overrides"
cat >>"$pkg/debian/rules" <<RULES

# Added by scripts/build-stdeb.sh.
# Dependencies are the ones stdeb.cfg lists (requires.txt would ask for pydantic 2).
# The vendor folder goes in after dh_python3, which would otherwise take it for a
# private module folder of CPython 3.11 (from the .so) and have the postinst
# byte-compile it with python3.11 everywhere, failing on Debian 13; the package's own
# postinst/prerm (scripts/stdeb/) do that on Debian 12 only.
override_dh_python3:
	dh_python3 --no-guessing-deps
	mkdir -p debian/python3-builder$(dirname "$VENDOR_DIR")
	cp -r vendor debian/python3-builder$VENDOR_DIR

override_dh_auto_install:
	dh_auto_install
	install -m 0755 debian/builder-wrapper debian/python3-builder/usr/bin/builder

# The vendored extension is upstream's manylinux build: ship it as it is.
override_dh_strip:
	dh_strip --no-automatic-dbgsym -X_pydantic_core
RULES

# 4. The binary package.
# nocheck: pybuild would run `unittest discover`, which only imports every
# module against the build host's python3 (no rich, no pydantic 2 on bookworm);
# the real tests are pytest's, and test_stdeb runs the package in real roots.
cd "$pkg"
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(date +%s)} DEB_BUILD_OPTIONS=nocheck \
    dpkg-buildpackage -b -us -uc >>"$work/build.log" 2>&1 || {
    tail -40 "$work/build.log" >&2
    exit 1
}
cp "$pkg"/../python3-builder_*_"$arch".deb "$out/"
ls "$out"/python3-builder_*_"$arch".deb
