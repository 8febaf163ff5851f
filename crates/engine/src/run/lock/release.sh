# Ends the holding command ($1 the directory asked for, $2 its tag). $T.cancel first, then
# `held PID` read: a holder that had not written it yet sees the cancel and ends. The pid is
# killed only if it is that holder (its arguments name $T), never whatever took the number.
set -C
: > "$T.cancel" 2>/dev/null
p=$(sed -n 's/^held //p' "$T" 2>/dev/null)
rm -f "$T"
if [ -n "$p" ] && tr '\0' '\n' < "/proc/$p/cmdline" 2>/dev/null | grep -qxF "$T"; then
    kill "$p" 2>/dev/null
    rm -f "$T.cancel"
fi
true
