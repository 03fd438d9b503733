#!/usr/bin/env bash
# The house style and lints, enforced: rustfmt with rustfmt.toml, and clippy
# with every warning an error (an `allow` carries its reason beside it).
# rustup installs both with Rust's default profile; where a toolchain lacks
# them, they are added if rustup can, else the run stops and says why.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in rustfmt clippy; do
    if ! cargo "${tool/rustfmt/fmt}" --version >/dev/null 2>&1; then
        echo "cargo ${tool/rustfmt/fmt} is missing; adding the $tool component" >&2
        rustup component add "$tool" || { echo "error: cannot install $tool (rustup component add $tool); it is needed to check the code" >&2; exit 1; }
    fi
done
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
