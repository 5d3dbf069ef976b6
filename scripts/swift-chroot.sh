#!/usr/bin/env bash
# Swift 6 for a bookworm host: bookworm has no Swift and no toolchain can be
# downloaded here, but Debian trixie packages one (`swiftlang`). So this keeps a
# trixie chroot with it, cached outside git, and runs commands in it.
#
#   scripts/swift-chroot.sh setup                  # build the chroot (once)
#   scripts/swift-chroot.sh run HOSTDIR -- CMD...  # run CMD in HOSTDIR inside it
#
# `run` sets up first if needed, bind-mounts HOSTDIR at the same path, runs CMD
# (exec'd as given, no shell: pass `bash -c '...'` for one) with cwd=HOSTDIR
# and a clean environment (use `env VAR=... CMD` to pass variables), and exits
# with CMD's status. Needs root. The chroot lives in
# ${SQUEEZE_SWIFT_CHROOT:-$HOME/.cache/squeeze/swift-trixie} (about 2.6 GB).
set -euo pipefail

ROOT=${SQUEEZE_SWIFT_CHROOT:-$HOME/.cache/squeeze/swift-trixie}
MIRROR=${SQUEEZE_SWIFT_MIRROR:-http://deb.debian.org/debian}
READY=$ROOT/.squeeze-ready # written last, so its presence means a whole chroot
# swiftlang brings gcc and binutils (swift links through gcc's crt files and
# GNU ld) but not libc6-dev, which gcc only recommends: without it no link
# finds Scrt1.o. pkg-config is for systemLibrary targets with `pkgConfig:`.
PKGS="swiftlang libc6-dev pkg-config"

MOUNTED=() # in mount order; unmounted in reverse
mnt() { # mnt TARGET MOUNT-ARGS...: skip a mount a previous run left behind
    local t=$1; shift
    mkdir -p "$t"
    mountpoint -q "$t" || mount "$@" "$t"
    MOUNTED+=("$t")
}
unmount_all() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        # lazy as a fallback: a stray background process must not keep the
        # host dir (or /dev) mounted inside the cache forever
        umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}" || true
    done
    MOUNTED=()
}
mount_system() {
    mnt "$ROOT/proc" -t proc proc
    mnt "$ROOT/sys" -t sysfs sysfs  # swift reads the CPU count from /sys
    mnt "$ROOT/dev" --bind /dev     # plain --bind, not --rbind: unmounting an
    mnt "$ROOT/dev/pts" --bind /dev/pts # rbind can take the host's submounts
    mnt "$ROOT/dev/shm" -t tmpfs tmpfs  # along when propagation is shared
}
in_root() { # a clean environment: the host's PATH, cargo etc. mean nothing here
    chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

setup() {
    [[ -e $READY ]] && return 0
    [[ $(id -u) == 0 ]] || { echo "swift-chroot: needs root" >&2; exit 1; }
    local t0=$SECONDS
    command -v debootstrap >/dev/null ||
        { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
    if [[ -e $ROOT ]]; then # a half-built root from an interrupted setup
        echo "swift-chroot: removing unfinished $ROOT" >&2
        for m in dev/shm dev/pts dev sys proc; do
            if mountpoint -q "$ROOT/$m"; then umount -l "$ROOT/$m"; fi
        done
        # a leaked bind mount of a host dir is on the same device, so
        # --one-file-system alone would not stop rm from wiping it
        if grep -qF " $ROOT/" /proc/mounts; then
            echo "swift-chroot: something is still mounted under $ROOT" >&2; exit 1
        fi
        rm -rf --one-file-system "$ROOT"
    fi
    mkdir -p "$(dirname "$ROOT")"
    # minbase then apt: apt resolves swiftlang's dependency tree (alternatives,
    # virtual packages) more reliably than debootstrap --include does.
    debootstrap --variant=minbase trixie "$ROOT" "$MIRROR"
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    mount_system
    trap unmount_all EXIT
    in_root apt-get update -qq
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends $PKGS
    in_root apt-get clean
    in_root swift --version
    unmount_all
    date -u +%FT%TZ >"$READY"
    echo "swift-chroot: setup took $((SECONDS - t0)) s ($(du -sh "$ROOT" | cut -f1))" >&2
}

run() {
    [[ $# -ge 3 && $2 == -- ]] || usage
    local dir
    dir=$(realpath -e "$1") || { echo "swift-chroot: no dir $1" >&2; exit 2; }
    [[ $dir != / && $dir != "$ROOT"* ]] || { echo "swift-chroot: bad dir $dir" >&2; exit 2; }
    shift 2
    setup
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    trap unmount_all EXIT
    mount_system
    mnt "$ROOT$dir" --bind "$dir"
    local rc=0
    in_root /bin/bash -c 'cd "$1" && shift && exec "$@"' bash "$dir" "$@" || rc=$?
    unmount_all
    return $rc
}

usage() {
    sed -n '6,7p' "$0" | sed 's/^# *//' >&2
    exit 2
}

# A private mount namespace where we can have one: the mounts vanish with the
# process even if it is killed -9, and concurrent runs don't unmount each
# other's. The mountpoint checks and the trap cover hosts without it.
if [[ -z ${SQUEEZE_SWIFT_NS:-} ]] && unshare --mount --propagation private true 2>/dev/null; then
    SQUEEZE_SWIFT_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi

case ${1:-} in
setup) setup ;;
run) shift; run "$@" ;;
*) usage ;;
esac
