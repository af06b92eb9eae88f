#!/bin/sh
# builder's unattended installer: writes the cluster node image from the install
# medium (CD, virtual media or USB stick) to this machine's disk, then reboots.
# Shipped verbatim in the installer image (images/installer/); it
# runs from cluster-installer.service, whose exit decides: 0 reboots, else halts.
#
# Options, each from the kernel command line (the boot menu entry) or else the
# systemd credential of the same name (SMBIOS type 11, as QEMU passes them):
#   cluster.install-disk=/dev/X   the target disk (default: the only, else the
#                                 largest, fixed disk that is not the medium)
#   cluster.install-force=1       also overwrite a disk that carries data
#   cluster.node=NAME             record this node's identity on the disk
#                                 (default: first boot finds it, e.g. by MAC)
set -u

CONF=/usr/lib/cluster-installer/installer.conf
RUN=/run/cluster-installer
MEDIUM="$RUN/medium"
TARGET="$RUN/target"
ROOT_TYPE=4f68bce3-e8cd-4db1-96e7-fbcaf984b709

# Set by $CONF (rendered by builder): CLUSTER, LABEL, IMAGE (the path of the
# zstd-compressed raw image on the medium; IMAGE without .zst plus .size holds
# its uncompressed size in bytes), NODES (space-separated).
CLUSTER=cluster
LABEL=
IMAGE=
NODES=
# shellcheck source=/dev/null
. "$CONF"

SCREEN=
# /dev/console is the last console= (the serial port when there is one); say
# everything on the first VT too, so a monitor shows it.
if [ -w /dev/tty1 ] && ! grep -qw 'tty1' /sys/class/tty/console/active 2>/dev/null; then
    SCREEN=/dev/tty1
fi

say() {
    printf 'cluster-install: %s\n' "$*"
    if [ -n "$SCREEN" ]; then
        printf 'cluster-install: %s\r\n' "$*" >"$SCREEN" 2>/dev/null || true
    fi
}

fail() {
    say "ERROR: $*"
    say "nothing more will happen: this machine halts now."
    exit 1
}

opt() {
    # The kernel command line wins over a credential.
    read -r cmdline </proc/cmdline || cmdline=
    for word in $cmdline; do
        case "$word" in
            "$1="*) printf '%s' "${word#*=}"; return 0 ;;
        esac
    done
    if [ -n "${CREDENTIALS_DIRECTORY:-}" ] && [ -r "$CREDENTIALS_DIRECTORY/$1" ]; then
        tr -d '\n' <"$CREDENTIALS_DIRECTORY/$1"
    fi
}

mib() {
    echo $(( $1 / 1048576 ))
}

iso_label_of() {
    # The volume id of an ISO 9660 file system on $1 (its primary volume
    # descriptor at 32 KiB), read directly: on a USB stick the ISO shares the
    # disk with a GPT, and libblkid does not report it there.
    magic=$(dd if="$1" bs=1 skip=32769 count=5 2>/dev/null)
    [ "$magic" = CD001 ] || return 1
    dd if="$1" bs=1 skip=32808 count=32 2>/dev/null | tr -d ' '
}

find_medium() {
    # The ISO 9660 file system with our label: a CD drive (sr*), or the whole
    # disk the ISO was written to (USB stick, virtual media as a disk).
    tries=0
    while [ "$tries" -lt 60 ]; do
        udevadm settle --timeout=10 >/dev/null 2>&1 || true
        for dev in $(lsblk -dnpo NAME); do
            if [ "$(iso_label_of "$dev")" = "$LABEL" ]; then
                echo "$dev"
                return 0
            fi
        done
        tries=$((tries + 1))
        sleep 1
    done
    return 1
}

disk_of() {
    parent=$(lsblk -dno PKNAME "$1" 2>/dev/null)
    if [ -n "$parent" ]; then echo "/dev/$parent"; else echo "$1"; fi
}

pick_disk() {
    # The only, else the largest, fixed writable disk that is not the medium.
    best=
    best_size=0
    count=0
    lsblk -dnbpo NAME,TYPE,RM,RO,SIZE >"$RUN/disks"
    while read -r name type rm ro size; do
        [ "$type" = disk ] || continue
        if [ "$rm" != 0 ] || [ "$ro" != 0 ]; then continue; fi
        [ "$name" = "$MEDIUM_DISK" ] && continue
        case "$name" in /dev/zram*|/dev/loop*|/dev/ram*) continue ;; esac
        count=$((count + 1))
        if [ "$size" -gt "$best_size" ]; then
            best=$name
            best_size=$size
        fi
    done <"$RUN/disks"
    if [ "$count" -gt 1 ]; then
        say "$count fixed disks found; taking the largest, $best (cluster.install-disk= picks another)" >&2
    fi
    echo "$best"
}

has_data() {
    # Any partition table, file system or other signature, or any partition.
    if [ -n "$(wipefs --no-act --noheadings --output TYPE "$1" 2>/dev/null)" ]; then
        return 0
    fi
    if blkid -p -c /dev/null "$1" >/dev/null 2>&1; then
        return 0
    fi
    [ "$(lsblk -nlo NAME "$1" 2>/dev/null | wc -l)" -gt 1 ]
}

describe_data() {
    sigs=$(wipefs --no-act --noheadings --output TYPE "$1" 2>/dev/null | tr '\n' ' ')
    parts=$(lsblk -nlo NAME,FSTYPE,SIZE "$1" 2>/dev/null | sed 1d | tr -s ' ' | tr '\n' ';')
    echo "signatures: ${sigs:-none}; partitions: ${parts:-none}"
}

write_image() {
    # $1 = compressed image, $2 = disk, $3 = uncompressed size in bytes
    rm -f "$RUN/zstd-failed"
    { zstd -dc -- "$1" || echo failed >"$RUN/zstd-failed"; } |
        dd of="$2" bs=4M iflag=fullblock oflag=direct conv=fsync status=none 2>"$RUN/dd.err" &
    dd_pid=$!
    ticks=0
    while kill -0 "$dd_pid" 2>/dev/null; do
        sleep 1
        ticks=$((ticks + 1))
        if [ $((ticks % 15)) -eq 0 ]; then
            written=$(sed -n 's/^wchar: //p' "/proc/$dd_pid/io" 2>/dev/null)
            [ -n "$written" ] && say "written $(mib "$written") of $(mib "$3") MiB (${ticks}s)"
        fi
    done
    wait "$dd_pid"
    rc=$?
    if [ "$rc" -ne 0 ] || [ -e "$RUN/zstd-failed" ]; then
        say "dd: $(cat "$RUN/dd.err" 2>/dev/null)"
        return 1
    fi
    say "image written in ${ticks}s"
    return 0
}

record_identity() {
    # $1 = disk, $2 = node. The node agent reads the systemd credential
    # cluster.node: cluster-firstboot.service gets it from /etc/credstore.
    sleep 1
    blockdev --rereadpt "$1" 2>/dev/null || partx --update "$1" 2>/dev/null || true
    udevadm settle --timeout=30 >/dev/null 2>&1 || true
    root=
    tries=0
    while [ -z "$root" ] && [ "$tries" -lt 20 ]; do
        lsblk -nlpo NAME,PARTTYPE "$1" >"$RUN/parts" 2>/dev/null || true
        while read -r name ptype; do
            if [ "$(echo "$ptype" | tr 'A-F' 'a-f')" = "$ROOT_TYPE" ]; then
                root=$name
                break
            fi
        done <"$RUN/parts"
        if [ -z "$root" ]; then
            tries=$((tries + 1))
            sleep 1
            partx --update "$1" 2>/dev/null || true
            udevadm settle --timeout=10 >/dev/null 2>&1 || true
        fi
    done
    [ -n "$root" ] || { say "no root partition found on $1 after writing"; return 1; }
    mkdir -p "$TARGET"
    mount -t ext4 "$root" "$TARGET" || { say "cannot mount $root"; return 1; }
    umask 077
    mkdir -p "$TARGET/etc/credstore"
    chmod 0700 "$TARGET/etc/credstore"
    printf '%s\n' "$2" >"$TARGET/etc/credstore/cluster.node"
    umask 022
    mkdir -p "$TARGET/etc/systemd/system/cluster-firstboot.service.d"
    cat >"$TARGET/etc/systemd/system/cluster-firstboot.service.d/50-installer-node.conf" <<EOF
# Written by the cluster installer: this machine was installed as node $2.
[Service]
LoadCredential=cluster.node:/etc/credstore/cluster.node
EOF
    sync
    umount "$TARGET" || { say "cannot unmount $root"; return 1; }
    say "recorded identity: node $2 (/etc/credstore/cluster.node on $root)"
    return 0
}

main() {
    mkdir -p "$RUN" "$MEDIUM"
    say "installer for cluster $CLUSTER starting (no questions asked)"
    say "options: cluster.install-disk=$(opt cluster.install-disk) cluster.install-force=$(opt cluster.install-force) cluster.node=$(opt cluster.node)"

    node=$(opt cluster.node)
    if [ -n "$node" ]; then
        case " $NODES " in
            *" $node "*) ;;
            *) fail "cluster.node=$node is not a node of $CLUSTER (nodes: $NODES). Fix: pick a node's menu entry." ;;
        esac
    fi
    force=$(opt cluster.install-force)
    case "$force" in
        ''|0|no|false) force=0 ;;
        1|yes|true) force=1 ;;
        *) fail "cluster.install-force=$force: use 1 or 0" ;;
    esac

    say "looking for the install medium (label $LABEL)"
    medium=$(find_medium) || fail "no install medium with label $LABEL found (devices: $(lsblk -dnpo NAME,TYPE,SIZE,FSTYPE,LABEL | tr -s ' ' | tr '\n' ';')). Fix: attach the ISO as a CD/DVD or write it to a USB stick with dd."
    MEDIUM_DISK=$(disk_of "$medium")
    mount -t iso9660 -o ro "$medium" "$MEDIUM" || fail "cannot mount $medium"
    image="$MEDIUM/$IMAGE"
    [ -f "$image" ] || fail "no $IMAGE on $medium: not this cluster's ISO, or damaged; rebuild it with builder image --format iso"
    size=$(cat "${image%.zst}.size" 2>/dev/null)
    case "$size" in ''|*[!0-9]*) fail "no image size file next to $image: the ISO is damaged" ;; esac
    say "medium: $medium (disk $MEDIUM_DISK), image $(basename "$image"), $(mib "$size") MiB"

    disk=$(opt cluster.install-disk)
    if [ -n "$disk" ]; then
        [ -b "$disk" ] || fail "cluster.install-disk=$disk is not a block device. Disks here: $(lsblk -dnpo NAME,SIZE,MODEL | tr '\n' ';')"
        disk=$(readlink -f "$disk")
        [ "$disk" != "$MEDIUM_DISK" ] || fail "cluster.install-disk=$disk is the install medium itself"
    else
        disk=$(pick_disk)
        [ -n "$disk" ] || fail "no fixed disk to install on (found: $(lsblk -dnpo NAME,TYPE,RM,SIZE | tr '\n' ';')). Fix: attach a disk, or name one with cluster.install-disk=/dev/..."
    fi
    disk_size=$(blockdev --getsize64 "$disk") || fail "cannot read the size of $disk"
    say "target disk: $disk, $(mib "$disk_size") MiB ($(lsblk -dno MODEL,SERIAL "$disk" 2>/dev/null | tr -s ' '))"
    [ "$disk_size" -ge "$size" ] || fail "$disk ($(mib "$disk_size") MiB) is smaller than the image ($(mib "$size") MiB)"

    if has_data "$disk"; then
        if [ "$force" != 1 ]; then
            say "REFUSED: $disk is not blank ($(describe_data "$disk"))."
            say "Nothing was written. To install over it and lose its data, boot this medium again,"
            say "press e on the menu entry and add cluster.install-force=1 (or wipe the disk first,"
            say "or name another disk with cluster.install-disk=/dev/...). Halting."
            exit 2
        fi
        say "$disk carries data ($(describe_data "$disk")): erasing it (cluster.install-force=1)"
        for part in $(lsblk -nlpo NAME "$disk" | sed 1d); do
            wipefs --all --quiet "$part" || fail "wipefs $part failed"
        done
        wipefs --all --quiet --force "$disk" || fail "wipefs $disk failed"
        blockdev --rereadpt "$disk" 2>/dev/null || true
    else
        say "$disk is blank"
    fi

    say "writing the $CLUSTER image to $disk"
    write_image "$image" "$disk" "$size" || fail "writing the image to $disk failed"
    if [ -n "$node" ]; then
        record_identity "$disk" "$node" || fail "could not record the node identity on $disk"
    else
        say "no node chosen: first boot finds the identity (MAC address, SMBIOS credential or kernel command line)"
    fi
    sync
    umount "$MEDIUM" 2>/dev/null || true
    case "$medium" in /dev/sr*) eject "$medium" >/dev/null 2>&1 || true ;; esac
    say "INSTALLED: $CLUSTER on $disk. Remove the install medium; rebooting into the node (first boot provisions it)."
    exit 0
}

main "$@"
