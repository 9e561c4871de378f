#!/usr/bin/env bash
# Recovery benchmark, medic vs Monit 5.33, one command:
#
#   bench/recovery/run.sh                 # TRIALS=10 per fault and side
#   TRIALS=3 bench/recovery/run.sh        # quicker
#   MEDIC_BIN=/path/to/medic bench/recovery/run.sh
#
# Optional: MEDIC_PROFILE=debug|release (else guessed from the binary's path),
# MEDIC_BIN_NOTE="how it was built" (both only go into the report).
#
# Builds nothing: the medic binary is $MEDIC_BIN, or
# $CARGO_TARGET_DIR/debug/medic (CARGO_TARGET_DIR defaults to
# ~/.cache/medic-target). It is copied into a scratch directory so a rebuild
# during the run cannot change it. Installs Monit with apt-get if missing.
# Loopback only. Writes bench/results/recovery.{csv,md} (OUT=name: name.{csv,md}). Every process it
# starts is stopped at the end, also on failure or interruption.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TRIALS=${TRIALS:-10}
OUT=${OUT:-recovery}   # bench/results/$OUT.{csv,md}
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/medic-target}
MEDIC_BIN_SRC=${MEDIC_BIN:-$CARGO_TARGET_DIR/debug/medic}

if [ ! -x "$MEDIC_BIN_SRC" ]; then
    echo "run.sh: no medic binary at $MEDIC_BIN_SRC" >&2
    echo "  build one (cargo build -p medic-agent [--release]) or set MEDIC_BIN" >&2
    exit 1
fi

if ! command -v monit >/dev/null 2>&1; then
    echo "run.sh: installing monit (apt-get)" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq monit >/dev/null
fi
MONIT=$(command -v monit)
"$MONIT" -V | head -1 | grep -q ' 5\.33\.' || echo "run.sh: warning: not Monit 5.33: $("$MONIT" -V | head -1)" >&2

# Debian's Python (stdlib only is needed); any python3 otherwise. No
# __pycache__ in the repository.
PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)
export PYTHONDONTWRITEBYTECODE=1

WORK=$(mktemp -d /tmp/medic-recovery.XXXXXX)
cp "$MEDIC_BIN_SRC" "$WORK/medic"
BENCH_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$BENCH_PID" ] && kill -0 "$BENCH_PID" 2>/dev/null; then
        kill -TERM "$BENCH_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$BENCH_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    # Whatever is left of this run: every process whose argv names the scratch
    # directory (medic, Monit, subreaper, the services: all run from or with
    # files in $WORK, a fresh mktemp name), killed by pid.
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" = "$$" ] && continue
        if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$WORK"; then
            kill -KILL "$pid" 2>/dev/null && echo "run.sh: killed leftover pid $pid" >&2 || true
        fi
    done
    echo "run.sh: logs and configs of this run are in $WORK" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CMD="TRIALS=$TRIALS bench/recovery/run.sh"
[ "$OUT" != recovery ] && CMD="OUT=$OUT $CMD"
[ -n "${MEDIC_PROFILE:-}" ] && CMD="MEDIC_PROFILE=$MEDIC_PROFILE $CMD"
[ -n "${MEDIC_BIN:-}" ] && CMD="MEDIC_BIN=$MEDIC_BIN $CMD"

mkdir -p "$REPO/bench/results"
# In the background and waited for, so a signal reaches the trap at once.
"$PY" "$HERE/bench.py" \
    --medic-bin "$WORK/medic" --medic-bin-source "$MEDIC_BIN_SRC" \
    --monit "$MONIT" --trials "$TRIALS" --work "$WORK" \
    --csv "$REPO/bench/results/$OUT.csv" --md "$REPO/bench/results/$OUT.md" \
    --profile "${MEDIC_PROFILE:-}" --bin-note "${MEDIC_BIN_NOTE:-}" \
    --command "$CMD" &
BENCH_PID=$!
wait "$BENCH_PID"
