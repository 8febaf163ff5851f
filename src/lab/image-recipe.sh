#!/usr/bin/env bash
# The recipe of the lab image: a Debian 12 root filesystem with systemd, sshd and every daemon the
# pgdeploy modules manage, installed but disabled so that hosts boot bare.
#
# Usage: image-recipe.sh ROOTFS WORKDIR MIRROR
# Runs as root on the machine. pgdeploy hashes this file (with its own recipe version) to key the
# image cache: any change here rebuilds the image.
set -euo pipefail

ROOTFS=$1
WORK=$2
MIRROR=$3

BASE_PACKAGES=systemd,systemd-sysv,dbus,openssh-server,iproute2
PACKAGES=(
    sudo curl ca-certificates acl python3-venv openssh-sftp-server
    postgresql-15 etcd-server etcd-client haproxy keepalived pgbackrest
    iputils-ping procps less
)
PY_REQUIREMENTS=("patroni[etcd3,psycopg3]>=4,<5" "psycopg[binary]>=3,<4" pglift pglift-cli)
VENV=/opt/pgdeploy-venv

# Unmounts the build's bind mounts whatever happens, so a failed build never leaves /dev or
# /proc mounted inside a directory that is later removed
cleanup() {
    for m in dev/pts dev sys proc; do
        if mountpoint -q "$ROOTFS/$m" 2>/dev/null; then
            umount -l "$ROOTFS/$m" || true
        fi
    done
}
trap cleanup EXIT

echo "== debootstrap into $ROOTFS from $MIRROR"
debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$ROOTFS" "$MIRROR"

echo "== python wheels (downloaded on the machine: pip in the chroot cannot verify TLS)"
mkdir -p "$WORK/wheels"
# Two dependencies (python-etcd, ydiff) are source only: setuptools and wheel let the chroot's
# pip build them without the index
python3 -m pip download --quiet --disable-pip-version-check --dest "$WORK/wheels" \
    "${PY_REQUIREMENTS[@]}" setuptools wheel

mount --bind /proc "$ROOTFS/proc"
mount --bind /sys "$ROOTFS/sys"
mount --bind /dev "$ROOTFS/dev"
mount --bind /dev/pts "$ROOTFS/dev/pts"

# Nothing may start during the build
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"

in_root() {
    chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive HOME=/root "$@"
}

echo "== apt-get install ${PACKAGES[*]}"
printf 'deb %s bookworm main\n' "$MIRROR" >"$ROOTFS/etc/apt/sources.list"
in_root apt-get update -qq
in_root apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
in_root apt-get clean

echo "== python virtualenv $VENV"
rm -rf "$ROOTFS/tmp/wheels"
cp -r "$WORK/wheels" "$ROOTFS/tmp/wheels"
in_root python3 -m venv "$VENV"
in_root "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-index \
    --find-links /tmp/wheels "${PY_REQUIREMENTS[@]}"
rm -rf "$ROOTFS/tmp/wheels"
for bin in patroni patronictl pglift; do
    ln -sf "$VENV/bin/$bin" "$ROOTFS/usr/local/bin/$bin"
done

echo "== hosts boot bare: no PostgreSQL cluster, daemons disabled"
if [ -d "$ROOTFS/etc/postgresql/15/main" ]; then
    in_root pg_dropcluster 15 main
fi
in_root systemctl disable postgresql etcd haproxy keepalived
in_root systemctl enable systemd-networkd ssh
# Timers that would reach for the network, and gettys nobody logs into
in_root systemctl disable apt-daily.timer apt-daily-upgrade.timer 2>/dev/null || true
in_root systemctl mask console-getty.service getty@.service 2>/dev/null || true

echo "== per-host identity is written by pgdeploy into each host's overlay"
rm -f "$ROOTFS"/etc/ssh/ssh_host_*
: >"$ROOTFS/etc/machine-id"
rm -f "$ROOTFS/var/lib/dbus/machine-id"
printf '# pgdeploy lab: no resolver, hosts are in /etc/hosts\n' >"$ROOTFS/etc/resolv.conf"
rm -f "$ROOTFS/usr/sbin/policy-rc.d"

echo "== check"
in_root /usr/local/bin/patroni --version
# pglift resolves the host name on import, which only works on a booted host: check the install
in_root "$VENV/bin/pip" show --quiet pglift pglift-cli patroni >/dev/null
in_root /usr/lib/postgresql/15/bin/postgres --version
for svc in postgresql etcd haproxy keepalived; do
    state=$(in_root systemctl is-enabled "$svc" || true)
    [ "$state" = disabled ] || { echo "service $svc is $state, want disabled" >&2; exit 1; }
done
echo "== image complete"
