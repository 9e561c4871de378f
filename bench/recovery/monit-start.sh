#!/bin/bash
# Monit's start program for the demo service: log the time Monit ran it (ms,
# bash builtin, no fork), start the service in the background with its output
# in a file (a start program must not stay in the foreground: COMPONENTS.md §4),
# and write its pid for `check process ... with pidfile`.
# Usage: monit-start.sh MEDIC_BIN PORT DIR
bin=$1 port=$2 dir=$3
echo "start $EPOCHREALTIME" >> "$dir/actions.log"
NO_COLOR=1 "$bin" demo-service --listen "127.0.0.1:$port" </dev/null >>"$dir/demo.log" 2>&1 &
echo $! > "$dir/demo.pid"
