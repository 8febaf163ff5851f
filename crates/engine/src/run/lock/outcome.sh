# Waits for the holding command's word in $T ($1 the directory asked for, $2 its tag, $3 at
# most that many steps of 20 ms) and prints it, removing it unless the lock is held (release
# removes that one). A directory this user cannot write is said at once: the holding command
# cannot say it there.
if ! [ -d "$D" ] || ! [ -w "$D" ]; then
    echo "failed: \`$D\` is not a directory this user can write"
    exit 0
fi
n=0
while [ ! -e "$T" ]; do
    n=$((n + 1))
    [ "$n" -gt "$3" ] && exit 1
    sleep 0.02
done
w=$(cat "$T")
printf '%s\n' "$w"
case $w in
    held*) ;;
    *) rm -f "$T" ;;
esac
