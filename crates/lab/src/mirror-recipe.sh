#!/usr/bin/env bash
# The recipe of the lab's package mirror, as an air-gapped site has one: a signed APT
# repository (suite `bookworm-pgdg`, standing in for a PGDG mirror) holding the packages the
# playbooks install and every dependency the bare lab image lacks, and a Python find-links
# directory with the wheels of Patroni 4 and pglift. The lab serves it over HTTP on its bridge.
#
# Usage: mirror-recipe.sh IMAGE_ROOTFS OUT WORK DEBIAN_MIRROR
# IMAGE_ROOTFS is the bare lab image: the packages are resolved in an overlay of it, so the
# repository holds exactly what a lab host needs. pgdeploy hashes this file together with the
# image's hash to key the mirror cache: a change of the package lists here rebuilds it.
set -euo pipefail

IMAGE=$1
OUT=$2
WORK=$3
DEBIAN_MIRROR=$4

SUITE=bookworm-pgdg
# Everything the shipped playbooks install, from Debian 12's own packages
APT_PACKAGES=(
    postgresql-15 postgresql-client-15 postgresql-common
    etcd-server etcd-client
    haproxy keepalived
    pgbackrest
    patroni
    prometheus-postgres-exporter
    python3-venv
    acl
)
PY_REQUIREMENTS=("patroni[etcd3,psycopg3]>=4,<5" "psycopg[binary]>=3,<4" pglift pglift-cli)

ROOT=$WORK/root
cleanup() {
    for m in dev/pts dev sys proc; do
        if mountpoint -q "$ROOT/$m" 2>/dev/null; then umount -l "$ROOT/$m" || true; fi
    done
    if mountpoint -q "$ROOT" 2>/dev/null; then umount -l "$ROOT" || true; fi
}
trap cleanup EXIT

mkdir -p "$OUT" "$WORK/upper" "$WORK/ovl" "$ROOT"
echo "== resolve the packages in an overlay of the image $IMAGE"
mount -t overlay overlay -o "lowerdir=$IMAGE,upperdir=$WORK/upper,workdir=$WORK/ovl" "$ROOT"
mount --bind /proc "$ROOT/proc"
mount --bind /sys "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
mount --bind /dev/pts "$ROOT/dev/pts"
in_root() {
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive HOME=/root "$@"
}
printf 'deb %s bookworm main\n' "$DEBIAN_MIRROR" >"$ROOT/etc/apt/sources.list"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
in_root apt-get update -qq
in_root apt-get install -y -qq --download-only --no-install-recommends "${APT_PACKAGES[@]}"
mkdir -p "$WORK/debs"
cp "$ROOT"/var/cache/apt/archives/*.deb "$WORK/debs/"
count=$(find "$WORK/debs" -name '*.deb' | wc -l)
echo "== $count packages"
cleanup

echo "== signing key of the lab mirror"
export GNUPGHOME=$WORK/gnupg
mkdir -p -m 0700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key \
    'pgdeploy lab mirror <lab-mirror@pgdeploy.invalid>' ed25519 sign never
fpr=$(gpg --batch --with-colons --list-secret-keys | awk -F: '/^fpr:/ {print $10; exit}')

echo "== signed APT repository $OUT/apt (suite $SUITE)"
mkdir -p "$WORK/reprepro/conf"
cat >"$WORK/reprepro/conf/distributions" <<DIST
Origin: pgdeploy-lab
Label: pgdeploy lab mirror
Codename: $SUITE
Architectures: $(dpkg --print-architecture)
Components: main
Description: Debian 12 packages for the pgdeploy lab, standing in for a PGDG mirror
SignWith: $fpr
DIST
reprepro --silent -b "$WORK/reprepro" --outdir "$OUT/apt" includedeb "$SUITE" "$WORK"/debs/*.deb
gpg --batch --armor --export "$fpr" >"$OUT/apt/pgdeploy-lab.asc"

echo "== Python wheels $OUT/python (find-links)"
mkdir -p "$OUT/python"
# `pip wheel`: the two source-only dependencies (python-etcd, ydiff) are built into wheels
# here, so hosts install wheels only (no build step, no setuptools needed on them)
python3 -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$OUT/python" \
    "${PY_REQUIREMENTS[@]}"
# An index page of links, so pip's --find-links reads the directory over HTTP whatever the
# server's directory listing looks like
{
    echo '<!DOCTYPE html><html><body>'
    for f in "$OUT"/python/*; do
        n=$(basename "$f")
        [ "$n" = index.html ] && continue
        printf '<a href="%s">%s</a><br>\n' "$n" "$n"
    done
    echo '</body></html>'
} >"$OUT/python/index.html"

echo "== check"
test -s "$OUT/apt/dists/$SUITE/InRelease"
gpg --batch --yes --dearmor -o "$WORK/lab-key.gpg" "$OUT/apt/pgdeploy-lab.asc"
gpgv --keyring "$WORK/lab-key.gpg" "$OUT/apt/dists/$SUITE/InRelease" 2>/dev/null ||
    { echo "InRelease signature does not verify" >&2; exit 1; }
for p in postgresql-15 etcd-server haproxy keepalived pgbackrest patroni python3-venv prometheus-postgres-exporter; do
    ls "$OUT"/apt/pool/main/*/*/"${p}"_*.deb >/dev/null 2>&1 || { echo "package $p missing" >&2; exit 1; }
done
ls "$OUT"/python/patroni-4.*.whl >/dev/null
ls "$OUT"/python/pglift-*.whl >/dev/null
du -sh "$OUT/apt" "$OUT/python"
echo "== mirror complete"
