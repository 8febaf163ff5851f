# Where the lock lives: `pgdeploy` in the directory asked for ($1) when that one is
# world-writable (/run/lock on Debian), else in /tmp. Chosen by the directory's mode, never by
# what this user may do, so that every login user of the host finds the same lock. The
# directory is sticky and world-writable like /tmp: files are replaced only by their owner.
# $T: the file through which a holding command ($2, its tag) says how taking it went.
L=$1
case $(ls -ldL "$L" 2>/dev/null) in
    d???????w*) ;;
    *) L=/tmp ;;
esac
D=$L/pgdeploy
[ -d "$D" ] || mkdir -m 1777 "$D" 2>/dev/null
T=$D/apply.$2
