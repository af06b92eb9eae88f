#!/bin/sh
# Install mkosi (25.x) for builder's image stage. Idempotent; run as root.
#
# Debian 13+: the distribution's mkosi package.
# Debian 12:  its own mkosi (14) is unusable, and backports' wants a newer host
#             systemd. So: download trixie's mkosi .deb with apt through a private
#             apt configuration (the host's Debian mirror, read from its apt
#             sources, plus a trixie suite only for this download), unpack it with
#             `dpkg -x` into $BUILDER_MKOSI_DIR and run it as
#             `/usr/bin/python3 -m mkosi` with PYTHONPATH. Images are then built
#             with a Debian trixie tools tree (builder.image does that).
#
# Environment:
#   BUILDER_MKOSI_DIR  where to unpack on Debian 12 (default /var/lib/builder/mkosi)
#   BUILDER_MIRROR     Debian mirror URL (default: the host's, from its apt sources)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
dest=${BUILDER_MKOSI_DIR:-/var/lib/builder/mkosi}
want_major=25

say() { printf 'setup-mkosi: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
[ -r /etc/os-release ] || die "no /etc/os-release: not a Debian host?"
# shellcheck disable=SC1091
. /etc/os-release
[ "${ID:-}" = debian ] || say "warning: not Debian (ID=${ID:-?}); trying the Debian 12 way"

export DEBIAN_FRONTEND=noninteractive

# qemu-img converts raw images to qcow2.
if ! command -v qemu-img >/dev/null 2>&1; then
    say "installing qemu-utils (qemu-img)"
    apt-get install -y -q qemu-utils >/dev/null || {
        apt-get update -q >/dev/null && apt-get install -y -q qemu-utils >/dev/null
    } || die "could not install qemu-utils"
fi

recent() { [ -n "$1" ] && [ "$1" -ge "$want_major" ]; }

mkosi_major() {  # print the major version of the mkosi run by "$@", or nothing
    "$@" --version 2>/dev/null | sed -n 's/^mkosi \([0-9][0-9]*\).*/\1/p' | head -n1
}

case "${VERSION_ID:-}" in
    12|11|10|"") host_old=1 ;;
    *) host_old=0 ;;
esac

if [ "$host_old" = 0 ]; then
    major=$(mkosi_major mkosi || true)
    if recent "$major"; then
        say "mkosi $major already installed"; exit 0
    fi
    say "installing mkosi from ${VERSION_CODENAME:-the distribution}"
    apt-get install -y -q mkosi >/dev/null || {
        apt-get update -q >/dev/null && apt-get install -y -q mkosi >/dev/null
    } || die "apt-get install mkosi failed"
    major=$(mkosi_major mkosi || true)
    recent "$major" || die "mkosi ${major:-?} is older than $want_major"
    say "mkosi $major installed"
    exit 0
fi

# Debian 12: private unpacked trixie mkosi.
run_private() { PYTHONPATH="$dest/usr/lib/python3/dist-packages" /usr/bin/python3 -m mkosi "$@"; }
major=$(mkosi_major run_private || true)
if recent "$major"; then
    say "mkosi $major already unpacked in $dest"; exit 0
fi

[ -x /usr/bin/python3 ] || apt-get install -y -q python3 >/dev/null || die "no /usr/bin/python3"

mirror=${BUILDER_MIRROR:-$(PYTHONPATH="$repo" /usr/bin/python3 -m builder.mirror mirror)} ||
    die "no Debian mirror in /etc/apt/sources.list{,.d/*}: set BUILDER_MIRROR"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || die "missing $keyring (package debian-archive-keyring)"

work=$(mktemp -d /var/tmp/builder-setup-mkosi.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/parts" "$work/prefs"
printf 'deb [signed-by=%s] %s trixie main\n' "$keyring" "$mirror" >"$work/sources.list"
aptopts="-o Dir::Etc::sourcelist=$work/sources.list -o Dir::Etc::sourceparts=$work/parts
 -o Dir::Etc::preferencesparts=$work/prefs -o Dir::State::Lists=$work/lists
 -o Dir::Cache=$work/cache -o Dir::Cache::archives=$work/archives
 -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Get::List-Cleanup=false
 -o Debug::NoLocking=true"
say "fetching the trixie mkosi package list from $mirror"
# shellcheck disable=SC2086
apt-get -q $aptopts update >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; die "apt-get update (trixie) failed"; }
say "downloading mkosi"
# shellcheck disable=SC2086
(cd "$work" && apt-get -q $aptopts download mkosi >>"$work/apt.log" 2>&1) ||
    { cat "$work/apt.log" >&2; die "apt-get download mkosi failed"; }
deb=$(ls "$work"/mkosi_*.deb)

rm -rf "$dest.new"
mkdir -p "$dest.new"
dpkg -x "$deb" "$dest.new"
cp "$deb" "$dest.new/"
rm -rf "$dest.old"
[ -e "$dest" ] && mv "$dest" "$dest.old"
mv "$dest.new" "$dest"
rm -rf "$dest.old"

major=$(mkosi_major run_private || true)
recent "$major" || die "unpacked mkosi does not run (version ${major:-?})"
say "mkosi $major unpacked in $dest (run: PYTHONPATH=$dest/usr/lib/python3/dist-packages /usr/bin/python3 -m mkosi)"
