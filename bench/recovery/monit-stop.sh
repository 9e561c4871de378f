#!/bin/bash
# Monit's stop program for the demo service, equivalent to medic's restart
# executor with `grace: 1s`: SIGTERM, look every 25 ms whether it is gone, and
# SIGKILL when it is still there once the grace period (wall clock) is over.
# Logs (µs, bash builtin, no fork) when Monit ran it, when it saw the service
# gone, or when it sent SIGKILL.
# Usage: monit-stop.sh DIR GRACE_MS
dir=$1 grace_ms=${2:-1000}
now_us() { local t=${EPOCHREALTIME/./}; echo $((10#$t)); }
echo "stop $EPOCHREALTIME" >> "$dir/actions.log"
deadline=$(( $(now_us) + grace_ms * 1000 ))
pid=$(cat "$dir/demo.pid" 2>/dev/null) || exit 0
[ -n "$pid" ] || exit 0
kill -TERM "$pid" 2>/dev/null || exit 0
gone() { echo "gone $EPOCHREALTIME" >> "$dir/actions.log"; exit 0; }
while (( $(now_us) < deadline )); do
    kill -0 "$pid" 2>/dev/null || gone
    sleep 0.025
done
kill -0 "$pid" 2>/dev/null || gone
echo "kill9 $EPOCHREALTIME" >> "$dir/actions.log"
kill -KILL "$pid" 2>/dev/null
exit 0
