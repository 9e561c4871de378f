#!/usr/bin/env bash
# remote_write ingest: the same synthetic stream into medic (with a threshold
# detector on every series) and into Prometheus 2.42
# (--web.enable-remote-write-receiver), one after the other in one run,
# REPEATS times alternating the order. Writes bench/results/remote_write.md.
#   bench/remote_write/run.sh            # SERIES=100000 DURATION=20 REPEATS=3
# DETECTOR=anomaly runs an `anomaly` detector (model auto) on every series
# instead of the threshold, and writes bench/results/remote_write-anomaly.md.
# MEDIC_BIN=path runs that medic binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medic-target}"
SERIES="${SERIES:-100000}"
DURATION="${DURATION:-20}"
REPEATS="${REPEATS:-3}"
THREADS="${THREADS:-2}"
BATCH="${BATCH:-1000}"
DETECTOR="${DETECTOR:-threshold}"
case "$DETECTOR" in
  threshold) RESULTS=bench/results/remote_write.md
    DETECTOR_YAML=$'  - name: bench-high\n    kind: threshold\n    series: \'{job="bench"}\'\n    above: 100000' ;;
  anomaly) RESULTS=bench/results/remote_write-anomaly.md
    DETECTOR_YAML=$'  - name: bench-anomaly\n    kind: anomaly\n    series: \'{job="bench"}\'' ;;
  *) echo "DETECTOR must be threshold or anomaly"; exit 1 ;;
esac
command -v prometheus >/dev/null || { echo "prometheus is required (apt-get install prometheus)"; exit 1; }
if [ -n "${MEDIC_BIN:-}" ]; then
  cargo build --release --locked -p medic-bench-rw
  MEDIC="$MEDIC_BIN"
else
  cargo build --release --locked -p medic-agent -p medic-bench-rw
  MEDIC="$CARGO_TARGET_DIR/release/medic"
fi
LOAD="$CARGO_TARGET_DIR/release/rwload"
D="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$D"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ready() { for _ in $(seq 300); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "not ready: $1"; exit 1; }

run_medic() {
  local p; p=$(port); rm -rf "$D/medic"; mkdir -p "$D/medic/runbooks"
  cat > "$D/medic/medic.yaml" <<YAML
listen: 127.0.0.1:$p
state_dir: state
runbooks: runbooks
sources:
  - name: rw
    kind: remote_write
    limits: {max_series: 5000000, max_body_bytes: 67108864}
detectors:
$DETECTOR_YAML
YAML
  "$MEDIC" run --config "$D/medic/medic.yaml" > "$D/medic/log" 2>&1 &
  local pid=$!
  ready "http://127.0.0.1:$p/readyz"
  "$LOAD" --url "http://127.0.0.1:$p/api/v1/write" --pid $pid --series "$SERIES" \
    --duration "$DURATION" --threads "$THREADS" --batch "$BATCH" | sed 's/^{/{"receiver":"medic",/' >> "$D/results.jsonl"
  kill -TERM $pid; wait $pid 2>/dev/null || true
}

run_prometheus() {
  local p; p=$(port); rm -rf "$D/prom"; mkdir -p "$D/prom"
  printf 'global:\n  scrape_interval: 1m\nscrape_configs: []\n' > "$D/prom/prometheus.yml"
  prometheus --config.file="$D/prom/prometheus.yml" --storage.tsdb.path="$D/prom/data" \
    --web.listen-address="127.0.0.1:$p" --web.enable-remote-write-receiver > "$D/prom/log" 2>&1 &
  local pid=$!
  ready "http://127.0.0.1:$p/-/ready"
  "$LOAD" --url "http://127.0.0.1:$p/api/v1/write" --pid $pid --series "$SERIES" \
    --duration "$DURATION" --threads "$THREADS" --batch "$BATCH" | sed 's/^{/{"receiver":"prometheus",/' >> "$D/results.jsonl"
  kill -TERM $pid; wait $pid 2>/dev/null || true
}

for i in $(seq "$REPEATS"); do
  if [ $((i % 2)) = 1 ]; then run_medic; run_prometheus; else run_prometheus; run_medic; fi
done
python3 - "$D/results.jsonl" "$SERIES" "$DURATION" "$THREADS" "$BATCH" "$REPEATS" "$DETECTOR" "$RESULTS" "$MEDIC" <<'PY'
import json, statistics, sys, subprocess, datetime, os
path, series, duration, threads, batch, repeats, detector, results, medic = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
def med(r, k): return statistics.median(x[k] for x in rows if x["receiver"] == r)
m, p = "medic", "prometheus"
prom_v = subprocess.run(["prometheus", "--version"], capture_output=True, text=True).stdout.split("\n")[0] or subprocess.run(["prometheus", "--version"], capture_output=True, text=True).stderr.split("\n")[0]
out = []
out.append("# remote_write ingest: medic beside Prometheus\n")
out.append(f"Generated {datetime.date.today()} by `bench/remote_write/run.sh` on a machine with nproc = {os.cpu_count()} (shared, noisy). {prom_v}.\n")
out.append(f"Stream: {series} series (4 labels each), samples in requests of {batch}, {threads} client threads, {duration} s per throughput phase, {repeats} runs per receiver alternating the order; medians. medic runs {'a threshold detector' if detector == 'threshold' else 'an anomaly detector (model auto: median/MAD, EWMA and Page–Hinkley)'} on every series and its series cache. medic binary: `{medic}`.\n")
out.append("| receiver | samples/s (wall) | samples per CPU-second | bytes per active series (RSS growth / series) |")
out.append("|---|---:|---:|---:|")
for r in (m, p):
    out.append(f"| {r} | {med(r,'samples_per_second'):,.0f} | {med(r,'samples_per_cpu_second'):,.0f} | {med(r,'bytes_per_series'):,.0f} |")
rate = med(m,'samples_per_cpu_second') / med(p,'samples_per_cpu_second')
mem = med(m,'bytes_per_series') / med(p,'bytes_per_series')
out.append("")
goals = (" (goal ≥ 2)", " (goal ≤ 0.25)") if detector == "threshold" else ("", "")
out.append(f"Ratios medic / Prometheus: ingest per core **{rate:.2f}×**{goals[0]}, memory per series **{mem:.2f}×**{goals[1]}.\n")
env = f"DETECTOR={detector} " if detector != "threshold" else ""
out.append(f"Reproduce: `{env}bench/remote_write/run.sh` (env SERIES, DURATION, REPEATS, THREADS, BATCH, DETECTOR, MEDIC_BIN). Raw rows:\n")
out.append("```")
out += [json.dumps(r) for r in rows]
out.append("```")
open(results, "w").write("\n".join(out) + "\n")
print("\n".join(out[:12]))
PY
