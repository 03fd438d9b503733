#!/usr/bin/env bash
# Runs Vigil's whole test suite: unit tests, plugin tests, and end-to-end
# tests of the `vigil` binary with its plugins (some on ../shared/data when
# it is there). Everything is built once, in release, because tests train.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# ONNX Runtime's library, for the tests of the detector's optional engine
# (they skip, saying so, without it).
if [ -z "${ORT_DYLIB_PATH:-}" ]; then
    ORT_DYLIB_PATH="$(bash scripts/onnxruntime.sh)"
    export ORT_DYLIB_PATH
fi
bash scripts/lint.sh
# The Kubernetes manifests against the Kubernetes schemas (no cluster here).
bash scripts/validate-k8s.sh
cargo build --release --workspace --locked
# Tests that need ../shared/data and do not find it (or, for the Slurm test,
# a cluster that cannot start here) pass after printing "SKIPPED: <test>:
# <why>"; count them so that a run without the data says so.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# --no-fail-fast: a failing test binary does not hide the ones after it.
cargo test --release --workspace --locked --no-fail-fast 2>&1 | tee "$log"
# The GPU path of the `cae` plugin (burn's wgpu backend) against its CPU
# kernels, on whatever adapter there is: lavapipe, Mesa's software Vulkan
# driver, on a machine without a GPU. It runs last: it leaves the GPU build
# of the plugin in the target folder (a superset of the CPU one), which the
# next `cargo build --workspace` replaces. Mesa's window-system code looks
# for a runtime folder even headless, and says so as an error without one.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    XDG_RUNTIME_DIR="$(mktemp -d)"
    export XDG_RUNTIME_DIR
    trap 'rm -f "$log"; rm -rf "$XDG_RUNTIME_DIR"' EXIT
fi
cargo test --release --locked -p vigil-plugin-cae --features gpu 2>&1 | tee -a "$log"
# (test names may hold "::", so the name is what precedes ": " after the tag)
skipped="$(sed -n 's/.*SKIPPED: \([^ ]*\): .*/\1/p' "$log" | sort -u)"
if [ -n "$skipped" ]; then
    echo "$(echo "$skipped" | wc -l) test(s) skipped, each for the reason its SKIPPED line gives (real data absent, or a service that cannot start here):"
    echo "$skipped" | sed 's/^/  /'
else
    echo "no test skipped: every test found the real data and services it needs"
fi
