#!/usr/bin/env bash
# Runs Vigil's whole test suite: unit tests, plugin tests, and end-to-end
# tests of the `vigil` binary with its plugins (some on ../shared/data when
# it is there). Everything is built once, in release, because tests train.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/lint.sh
cargo build --release --workspace --locked
# Tests that need ../shared/data and do not find it pass after printing
# "SKIPPED: <test>: ..."; count them so that a run without the data says so.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --release --workspace --locked 2>&1 | tee "$log"
# (test names may hold "::", so the name is what precedes ": " after the tag)
skipped="$(sed -n 's/.*SKIPPED: \([^ ]*\): .*/\1/p' "$log" | sort -u)"
if [ -n "$skipped" ]; then
    echo "$(echo "$skipped" | wc -l) test(s) skipped for lack of real data:"
    echo "$skipped" | sed 's/^/  /'
else
    echo "no test skipped: every test that needs real data found it"
fi
