#!/usr/bin/env bash
# Prints the path of ONNX Runtime's shared library for the `detector`
# stage's optional engine (`engine = "onnxruntime"`), fetching it once from
# PyPI: the `onnxruntime` wheel carries the library, and nothing else of it
# (no Python module, no dependencies) is used. Cached under
# $HOME/.cache/vigil-onnxruntime. Prints nothing and says why on stderr when
# it cannot be fetched (no pip, no network); the tests that need it then
# skip with that reason.
#
#   export ORT_DYLIB_PATH="$(bash scripts/onnxruntime.sh)"
set -euo pipefail
version="1.32.0"
folder="$HOME/.cache/vigil-onnxruntime/$version"
library() { find "$folder/onnxruntime/capi" -maxdepth 1 -name 'libonnxruntime.so.*' 2>/dev/null | head -n1; }
if [ -z "$(library)" ]; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "scripts/onnxruntime.sh: python3 -m pip is not available; ONNX Runtime's library not fetched" >&2
    exit 0
  fi
  partial="$folder.partial"
  rm -rf "$partial"
  if ! python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --only-binary=:all: --target "$partial" "onnxruntime==$version" >&2; then
    echo "scripts/onnxruntime.sh: pip could not fetch onnxruntime $version; ONNX Runtime's library not fetched" >&2
    rm -rf "$partial"
    exit 0
  fi
  # Renamed into place whole, so an interrupted fetch is never taken for one.
  rm -rf "$folder"
  mv "$partial" "$folder"
fi
library
