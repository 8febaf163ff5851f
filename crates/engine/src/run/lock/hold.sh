# Takes the lock and holds it. $1 the directory asked for, $2 this command's tag, $3 the run's
# name, $4 who the run is (for another run's refusal), $5 how many seconds a held lock is
# tried again, $6 the script that holds it (held.sh).
#
# `flock` locks the directory itself: no lock file is ever created, so no other user's file is
# opened with O_CREAT (which fs.protected_regular refuses in a sticky directory) and no
# planted symbolic link is followed. `-o`: only flock holds the lock, not the loop under it.
# Busy, it is tried again (every 50 ms for two seconds, then every 0.2 s) so that a lock this
# run holds through another of its hosts (the same machine) is recognised by its owner file.
# Whatever happens, $T ends up saying it: `held PID` (written by held.sh), `shared`,
# `busy WHO`, or `failed`.
set -C
umask 022
O=$D/owner.$3
put() {
    rm -f "$T.new"
    printf '%s\n' "$1" > "$T.new" && mv -f "$T.new" "$T"
}
if ! [ -d "$D" ] || ! [ -w "$D" ]; then
    echo "\`$D\` is not a directory this user can write" >&2
    exit 73
fi
end=$(( $(date +%s) + $5 ))
n=0
while :; do
    flock -n -o -E 75 "$D" sh -c "$6" holder "$O" "$T" "$2" "$4"
    s=$?
    # held, then ended: its owner file goes with it
    if [ "$(head -n 1 "$O" 2>/dev/null)" = "$2" ]; then rm -f "$O"; fi
    case $s in
        75) ;;
        0|129|141|143) rm -f "$T" "$T.cancel"; exit "$s" ;;
        *)
            case $(cat "$T" 2>/dev/null) in
                held*) rm -f "$T" ;;
                *) put failed ;;
            esac
            exit "$s"
            ;;
    esac
    if [ -e "$O" ]; then put shared; exit 0; fi
    if [ -e "$T.cancel" ]; then rm -f "$T.cancel"; exit 0; fi
    if [ "$(date +%s)" -ge "$end" ]; then
        w=$(ls -t "$D"/owner.* 2>/dev/null | head -n 1)
        put "busy $(sed -n 2p "$w" 2>/dev/null)"
        exit 75
    fi
    n=$((n + 1))
    if [ "$n" -le 40 ]; then sleep 0.05; else sleep 0.2; fi
done
