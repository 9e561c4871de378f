#!/usr/bin/env bash
# The test command: installs what the tests need, then runs the whole suite
# (unit, property and end-to-end tests against the real medic binary).
#   ./tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# --- what the tests need from the system ------------------------------------
# A C compiler (bundled SQLite, aws-lc) and the tools the e2e tests call.
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v printenv >/dev/null || need+=(coreutils)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}";
  else sudo apt-get update -qq && sudo apt-get install -y -qq "${need[@]}"; fi
fi
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }

# --- build once, then test ----------------------------------------------------
# Reuse a target directory outside the checkout when one exists (CI and the
# developers' machines keep it warm).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medic-target}"
cargo build --workspace --bins --locked
export MEDIC_BIN="$CARGO_TARGET_DIR/debug/medic"
# End-to-end tests start several processes each; three at a time is plenty for
# a 2-core machine.
cargo test --workspace --locked -- --test-threads=3
