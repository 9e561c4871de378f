#!/usr/bin/env bash
# The test command: installs what the tests need, then runs the whole suite
# (unit, property and end-to-end tests against the real medic binary).
#   ./tests/run.sh
#   ./tests/run.sh --install-only   # only the system packages (CI runs this before clippy)
set -euo pipefail
cd "$(dirname "$0")/.."

# --- what the tests need from the system ------------------------------------
# A C compiler (bundled SQLite, aws-lc) and the tools the e2e tests call.
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v printenv >/dev/null || need+=(coreutils)
# Real components the ingest tests run against (../shared/COMPONENTS.md).
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
command -v haproxy >/dev/null || need+=(haproxy)
# etcd 3.4 for the etcd store's tests (etcdctl to look inside), and protoc
# with the well-known .proto files: etcd-client generates its gRPC code at build time.
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
# libfaketime: a wall-clock jump for one medic node (tests/e2e/ha.rs)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || need+=(libfaketime)
command -v protoc >/dev/null || need+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
command -v openssl >/dev/null || need+=(openssl)   # certificates for the etcd TLS test
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# Headless Chromium and Node.js for the web console test (tests/e2e/console.rs),
# without recommends (they pull in desktop packages).
web=()
[ -x /usr/bin/chromium ] || web+=(chromium)
command -v node >/dev/null || web+=(nodejs)
command -v npm >/dev/null || web+=(npm)
apt_install() {
  echo "installing: $*"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "$@";
  else sudo apt-get update -qq && sudo apt-get install -y -qq "$@"; fi
}
if [ ${#need[@]} -gt 0 ]; then apt_install "${need[@]}"; fi
if [ ${#web[@]} -gt 0 ]; then apt_install --no-install-recommends "${web[@]}"; fi
[ "${1:-}" = --install-only ] && exit 0
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }

# --- a Python venv with the real clients (OpenTelemetry SDK, aiosmtpd) --------
export MEDIC_VENV="${MEDIC_VENV:-$HOME/.cache/medic-venv}"
if ! "$MEDIC_VENV/bin/python" -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http, aiosmtpd' 2>/dev/null; then
  /usr/bin/python3 -m venv "$MEDIC_VENV"
  "$MEDIC_VENV/bin/pip" install -q -r tests/requirements.txt
fi

# --- playwright-core, which drives Debian's chromium (it downloads no browser) --
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "Node.js $(node --version) is too old: playwright-core 1.65 needs Node.js 20 or newer" >&2
  echo "(Debian bookworm's nodejs is 18; use a Node.js 20 package, e.g. Debian trixie's)." >&2
  exit 1
fi
export MEDIC_NODE="${MEDIC_NODE:-$HOME/.cache/medic-node}"
if [ "$(node -p "require('$MEDIC_NODE/node_modules/playwright-core/package.json').version" 2>/dev/null)" != 1.65.1 ]; then
  mkdir -p "$MEDIC_NODE"
  npm install --prefix "$MEDIC_NODE" --no-audit --no-fund --save-exact playwright-core@1.65.1
fi

# --- build once, then test ----------------------------------------------------
# Reuse a target directory outside the checkout when one exists (CI and the
# developers' machines keep it warm).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medic-target}"
cargo build --workspace --bins --locked
export MEDIC_BIN="$CARGO_TARGET_DIR/debug/medic"
# End-to-end tests start several processes each; three at a time is plenty for
# a 2-core machine.
# Everything is installed now: a test of a real component that finds it
# missing fails instead of skipping.
export MEDIC_REQUIRE_COMPONENTS=1
cargo test --workspace --locked -- --test-threads=3
