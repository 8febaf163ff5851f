#!/usr/bin/env bash
# Installs what `pgdeploy lab` needs on a fresh Debian 12 machine (run as root).
# Idempotent and quiet when everything is already there.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "install-lab-prereqs: must run as root" >&2
    exit 1
fi

# command -> Debian package that provides it
declare -A wanted=(
    [debootstrap]=debootstrap
    [systemd-nspawn]=systemd-container
    [ip]=iproute2
    [ssh]=openssh-client
    [ssh-keygen]=openssh-client
    [nsenter]=util-linux
    [mount]=mount
)

missing=()
for cmd in "${!wanted[@]}"; do
    if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ] && ! [ -x "/sbin/$cmd" ]; then
        missing+=("${wanted[$cmd]}")
    fi
done
# pip on the machine downloads the Python wheels that go into the image
if ! python3 -m pip --version >/dev/null 2>&1; then
    missing+=(python3-pip)
fi
# overlayfs is needed for the per-host root filesystems
if ! grep -qw overlay /proc/filesystems; then
    modprobe overlay 2>/dev/null || true
fi

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

# de-duplicate
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "install-lab-prereqs: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-lab-prereqs: done"
