#!/usr/bin/env bash
# The web console with a thousand open incidents: how long until the list is
# rendered in headless Chromium, and what /api/v1/incidents costs.
#
#   bench/console/run.sh              # N=10 page loads, 1000 incidents
#   N=20 INCIDENTS=2000 bench/console/run.sh
#
# Starts medic ($MEDIC_BIN, default the debug build in $CARGO_TARGET_DIR) with
# an Alertmanager webhook source, opens INCIDENTS incidents through it in one
# POST (the real ingest path), acknowledges every tenth through the API, then
# runs bench/console/load.js: N loads of the console, each in a fresh browser
# context (empty cache), timed until the app marks the list rendered
# (body[data-ready]) and until the next frame. Writes bench/results/console.md.
#
# Needs chromium, node and playwright-core in $MEDIC_NODE (tests/run.sh installs them).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export N=${N:-10}
export INCIDENTS=${INCIDENTS:-1000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/medic-target}
export MEDIC_BIN=${MEDIC_BIN:-$CARGO_TARGET_DIR/debug/medic}
export MEDIC_NODE=${MEDIC_NODE:-$HOME/.cache/medic-node}
[ -x "$MEDIC_BIN" ] || { echo "no medic at $MEDIC_BIN: cargo build -p medic-agent (or set MEDIC_BIN)" >&2; exit 1; }
[ -x /usr/bin/chromium ] || { echo "no /usr/bin/chromium: tests/run.sh installs it" >&2; exit 1; }
[ -f "$MEDIC_NODE/node_modules/playwright-core/package.json" ] || { echo "no playwright-core in $MEDIC_NODE: tests/run.sh installs it" >&2; exit 1; }

dir=$(mktemp -d /tmp/medic-console-bench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$dir/runbooks"
cat > "$dir/medic.yaml" <<EOF
listen: 127.0.0.1:$port
state_dir: state
runbooks: runbooks
sources:
  - name: am
    kind: alertmanager
EOF
"$MEDIC_BIN" run --config "$dir/medic.yaml" > "$dir/medic.log" 2>&1 &
medic=$!
trap 'kill $medic 2>/dev/null; wait $medic 2>/dev/null; rm -rf "$dir"' EXIT
export MEDIC_URL="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$MEDIC_URL/readyz" >/dev/null && break; sleep 0.2; done

cd "$REPO"
NODE_PATH="$MEDIC_NODE/node_modules" node bench/console/load.js
