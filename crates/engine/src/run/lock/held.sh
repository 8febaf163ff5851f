# Runs under flock, lock held. $1 the run's owner file, $2 $T, $3 this command's tag, $4 who
# the run is. Writes both (new files only: `set -C`), then a byte every half second until the
# write fails: the connection is gone, and the lock with this command. A release that came
# before `held` was written left $T.cancel: then it ends at once. `sleep` has none of the
# connection's streams: killed by release, this shell ends the command at once, not when its
# last `sleep` does.
set -C
rm -f "$1"
printf '%s\n%s\n' "$3" "$4" > "$1" || exit 70
rm -f "$2.new"
{ echo "held $$" > "$2.new" && mv -f "$2.new" "$2"; } || exit 70
if [ -e "$2.cancel" ]; then
    rm -f "$2" "$2.cancel"
    exit 0
fi
while printf .; do sleep 0.5 < /dev/null > /dev/null 2>&1; done
