#!/usr/bin/env bash
# Sets Vigil up on a fresh Debian machine and runs the demo: installs the
# Debian packages it needs if missing, builds everything, generates a
# synthetic surveillance scene and finds its anomalies.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --workspace --locked
target="${CARGO_TARGET_DIR:-target}"
"$target/release/vigil" demo --out "${1:-vigil-demo}"
