#!/usr/bin/env bash
# Runs Vigil's whole test suite: unit tests, plugin tests, and end-to-end
# tests of the `vigil` binary with its plugins (some on ../shared/data when
# it is there). Everything is built once, in release, because tests train.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --workspace --locked
cargo test --release --workspace --locked
