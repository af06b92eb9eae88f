#!/bin/bash
# Set up a Debian 12 (bookworm) or 13 (trixie) host, as root, for everything
# builder does: the host tools its tests and stages call, and a venv with
# builder itself. Idempotent: rerun it any time (CI does, on every run).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root (it installs Debian packages)" >&2
    exit 1
fi
# shellcheck source=/dev/null
. /etc/os-release
case "${VERSION_CODENAME:-}" in
    bookworm|trixie) ;;
    *) echo "setup: needs Debian 12 (bookworm) or 13 (trixie), this is ${PRETTY_NAME:-unknown}" >&2; exit 1 ;;
esac

# Host tools: the one table in builder/tools.py (`builder doctor` prints it) says
# which package each tool comes from. Reading it takes Debian's python3 and
# nothing else: no venv yet.
if [ ! -x /usr/bin/python3 ]; then
    apt-get update -q || echo "setup: apt-get update reported errors; continuing with what is reachable" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3
fi
list=$(PYTHONPATH="$repo" /usr/bin/python3 -S -m builder.tools apt-packages)
mapfile -t packages <<<"$list"

stamp=/var/lib/builder/setup-apt.stamp
want=$(printf '%s\n' "${packages[@]}" | sort | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
    echo "setup: installing host packages (${#packages[@]})"
    export DEBIAN_FRONTEND=noninteractive
    # Third-party sources on a host may be unreachable; Debian's must work.
    apt-get update -q || echo "setup: apt-get update reported errors; continuing with what is reachable" >&2
    # Nothing we install may start a daemon on the build host (heartbeat, drbd).
    apt-get install -y -q --no-install-recommends "${packages[@]}"
    mkdir -p "$(dirname "$stamp")"
    echo "$want" > "$stamp"
fi

# mkosi for images: from Debian 13's package, or unpacked privately on 12.
if [ -x scripts/setup-mkosi.sh ]; then
    scripts/setup-mkosi.sh
fi

# The lab's site time server: chronyd from Debian's chrony package, unpacked
# privately, because installing chrony would replace the host's own time daemon.
chrony_dir=/var/lib/builder/chrony
if [ ! -x "$chrony_dir/usr/sbin/chronyd" ] || ! "$chrony_dir/usr/sbin/chronyd" -v >/dev/null 2>&1; then
    echo "setup: unpacking chronyd into $chrony_dir (for the lab)"
    work=$(mktemp -d /var/tmp/builder-setup-chrony.XXXXXX)
    (cd "$work" && { apt-get download -q -o APT::Sandbox::User=root chrony >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1; apt-get download -q -o APT::Sandbox::User=root chrony; }; })
    rm -rf "$chrony_dir" && mkdir -p "$chrony_dir"
    dpkg -x "$work"/chrony_*.deb "$chrony_dir"
    rm -rf "$work"
    "$chrony_dir/usr/sbin/chronyd" -v >/dev/null
fi

# The venv always uses Debian's python3, not whatever comes first on PATH.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
    /usr/bin/python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import builder, pydantic, pytest, ruff' 2>/dev/null \
        || [ pyproject.toml -nt .venv/.installed ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[dev]'
    touch .venv/.installed
fi
echo "setup: ok ($(.venv/bin/builder --version), Debian ${VERSION_CODENAME})"
