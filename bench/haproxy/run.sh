#!/usr/bin/env bash
# HAProxy failover benchmark: medic's failover through the runtime API beside
# HAProxy's own health-check failover, on the same fault in the same run.
#
#   bench/haproxy/run.sh                 # TRIALS=10
#   TRIALS=3 bench/haproxy/run.sh
#
# Each trial is one run of the e2e test
# haproxy_failover_drains_a_primary_returning_500s_and_restores_it
# (tests/e2e/recovery.rs): two demo services behind two HAProxy 2.6
# instances; the primary starts answering 500; one HAProxy is switched by
# medic (error-rate detector → kind: haproxy, action maint → verify through
# HAProxy), the other by its own checks (option httpchk, inter 500ms fall 2
# rise 1). A client sends GET /health through each every 50 ms. Measured per
# trial: fault → medic's run seen verified through its API, and how long after
# the fault each client still saw errors.
#
# Needs haproxy (tests/run.sh installs it) and a built medic ($MEDIC_BIN or
# $CARGO_TARGET_DIR/debug/medic). Writes bench/results/haproxy.{csv,md}.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TRIALS=${TRIALS:-10}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/medic-target}
export MEDIC_BIN=${MEDIC_BIN:-$CARGO_TARGET_DIR/debug/medic}
cd "$REPO"
csv=bench/results/haproxy.csv
echo "trial,verified_s,medic_errors_s,haproxy_checks_errors_s" > "$csv"
for i in $(seq "$TRIALS"); do
    line=$(cargo test -q -p medic-e2e --test recovery -- haproxy_failover --nocapture 2>&1 | grep 'fault → verified failover' || true)
    [ -n "$line" ] || { echo "trial $i: the test did not report (did it fail?)" >&2; exit 1; }
    nums=$(echo "$line" | grep -oE '[0-9]+\.[0-9]+s' | tr -d s | paste -sd,)
    echo "$i,$nums" >> "$csv"
    echo "trial $i: $nums"
done
python3 - "$csv" "$TRIALS" <<'PY' > bench/results/haproxy.md
import csv, statistics, sys, platform, subprocess
rows = list(csv.DictReader(open(sys.argv[1])))
def col(k): return [float(r[k]) for r in rows]
def show(k): v = col(k); return f"{statistics.median(v):.2f} s (min {min(v):.2f}, max {max(v):.2f})"
hv = subprocess.run(["sh", "-c", "haproxy -v 2>/dev/null | head -1 || /usr/sbin/haproxy -v | head -1"], capture_output=True, text=True).stdout.strip()
print("# HAProxy failover: medic beside HAProxy's own health checks\n")
print(f"`bench/haproxy/run.sh`, {len(rows)} trials, {hv}, {platform.machine()}; medic debug build unless MEDIC_BIN says otherwise.\n")
print("| median of the trials | |")
print("|---|---|")
print(f"| fault → medic's failover verified (as the API shows it) | {show('verified_s')} |")
print(f"| clients saw errors through medic's HAProxy for | {show('medic_errors_s')} |")
print(f"| clients saw errors through the health-checked HAProxy for | {show('haproxy_checks_errors_s')} |")
print("\nmedic: error-rate detector over a 3 s window on the primary's own request counters, scraped every 300 ms; action `maint`, then traffic confirmed on the backup and `/health` verified through HAProxy. HAProxy: `option httpchk GET /health`, `check inter 500ms fall 2 rise 1`. Per-trial numbers: `haproxy.csv`.")
PY
cat bench/results/haproxy.md
