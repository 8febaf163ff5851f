#!/usr/bin/env bash
# The recipe of the lab image: a bare Debian 12 root filesystem, like a freshly provisioned
# server (systemd, sshd, python3, ca-certificates, curl, sudo). None of the software the
# pgdeploy modules manage is in it: the playbooks install it from the lab's package mirror
# (`mirror-recipe.sh`). The hosts are air-gapped: apt has no source until a playbook adds one.
#
# Usage: image-recipe.sh ROOTFS WORKDIR MIRROR
# Runs as root on the machine. pgdeploy hashes this file (with its own recipe version) to key the
# image cache: any change here rebuilds the image (and the package mirror, which is keyed on it).
set -euo pipefail

ROOTFS=$1
WORK=$2
MIRROR=$3

# What a minimal cloud / debootstrap Debian 12 server carries, and nothing the modules install
BASE_PACKAGES=systemd,systemd-sysv,dbus,openssh-server,openssh-sftp-server,iproute2,python3,ca-certificates,curl,sudo,procps,iputils-ping,less

cleanup() {
    for m in dev/pts dev sys proc; do
        if mountpoint -q "$ROOTFS/$m" 2>/dev/null; then
            umount -l "$ROOTFS/$m" || true
        fi
    done
}
trap cleanup EXIT

mkdir -p "$WORK"
echo "== debootstrap into $ROOTFS from $MIRROR"
debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$ROOTFS" "$MIRROR"

mount --bind /proc "$ROOTFS/proc"
mount --bind /sys "$ROOTFS/sys"
mount --bind /dev "$ROOTFS/dev"
mount --bind /dev/pts "$ROOTFS/dev/pts"

in_root() {
    chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive HOME=/root "$@"
}

echo "== services of a server"
in_root systemctl enable systemd-networkd ssh
# Timers that would reach for the network, and gettys nobody logs into
in_root systemctl disable apt-daily.timer apt-daily-upgrade.timer 2>/dev/null || true
in_root systemctl mask console-getty.service getty@.service 2>/dev/null || true

echo "== air-gapped: no apt source (a playbook adds the site's mirror), no package lists"
printf '# pgdeploy lab: no source; the playbooks add the lab mirror (pgdg_repo)\n' \
    >"$ROOTFS/etc/apt/sources.list"
rm -rf "$ROOTFS"/var/lib/apt/lists/*
in_root apt-get clean

echo "== per-host identity is written by pgdeploy into each host's overlay"
rm -f "$ROOTFS"/etc/ssh/ssh_host_*
: >"$ROOTFS/etc/machine-id"
rm -f "$ROOTFS/var/lib/dbus/machine-id"
printf '# pgdeploy lab: no resolver, hosts are in /etc/hosts\n' >"$ROOTFS/etc/resolv.conf"

echo "== check: bare"
in_root python3 --version
in_root curl --version >/dev/null
for absent in /usr/lib/postgresql /usr/bin/etcd /usr/sbin/haproxy /usr/sbin/keepalived \
    /usr/bin/pgbackrest /usr/bin/patroni /usr/local/bin/patroni; do
    if [ -e "$ROOTFS$absent" ]; then
        echo "image is not bare: $absent exists" >&2
        exit 1
    fi
done
echo "== image complete"
