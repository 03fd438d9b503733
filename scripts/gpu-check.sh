#!/usr/bin/env bash
# The GPU path on a machine with a GPU: builds the `cae` plugin with burn's
# wgpu backend, names the adapter it trains on, checks its losses and
# gradients against the CPU kernels there, times a training step and an eval
# forward at batch 64 and 256 (F = 32, the paper's network) beside PyTorch
# on the same GPU when torch with CUDA is installed, and fits Ped2 briefly.
# Every figure goes to $OUT (default runs/gpu-check), one file per step.
#
#   bash scripts/gpu-check.sh                 # needs ../shared/data for Ped2
#   FULL=1 bash scripts/gpu-check.sh          # also pipelines/ped2.toml to the end (paper settings)
#   QUICK=1 bash scripts/gpu-check.sh         # a tiny network and one epoch: checks the script itself
#
# PYTHON names a Python with torch (default python3). On a machine without a
# GPU it runs on a software adapter (Mesa's lavapipe) and says so: those
# figures measure nothing but correctness.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/gpu-check}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
target="${CARGO_TARGET_DIR:-target}"
vigil="$target/release/vigil"
# Mesa's window-system code wants a runtime folder even headless.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

echo "== build (the workspace, then the cae plugin with the gpu feature over it)"
cargo build --release --locked --workspace
cargo build --release --locked -p vigil-plugin-cae --features gpu

echo "== the adapter, and the GPU against the CPU kernels"
VIGIL_LOG=info cargo test --release --locked -p vigil-plugin-cae --features gpu --lib gpu 2>&1 | tee "$OUT/gpu-tests.txt"
grep -m1 "NOTE: .*on the GPU" "$OUT/gpu-tests.txt" | sed 's/.*on the GPU //' > "$OUT/adapter.txt"
echo "adapter: $(cat "$OUT/adapter.txt")"

sets=(--set stage.appearance.options.device=gpu)
bench_steps=5
if [ -n "${QUICK:-}" ]; then
    sets+=(--set stage.appearance.options.features_root=4)
    bench_steps=1
fi

echo "== training step and eval forward, GPU then CPU (PyTorch beside each when it runs)"
"$vigil" bench fit pipelines/ped2.toml "${sets[@]}" --steps "$bench_steps" \
    --reference benches/cae_pytorch.py --python "$PYTHON" | tee "$OUT/bench-fit-gpu.txt"
"$vigil" bench fit pipelines/ped2.toml "${sets[@]/device=gpu/device=cpu}" --steps "$bench_steps" \
    --reference benches/cae_pytorch.py --python "$PYTHON" | tee "$OUT/bench-fit-cpu.txt"

echo "== a short Ped2 fit on the GPU (2 epochs; QUICK: 1 epoch on 2 videos)"
fit_sets=("${sets[@]}" --set stage.appearance.options.epochs=2 --set stage.spr.options.warmup_epochs=1)
if [ -n "${QUICK:-}" ]; then
    subset="$OUT/ped2-videos-01-02"
    mkdir -p "$subset"
    for v in 01 02; do ln -sfn "$(realpath ../shared/data/ped2/testing/frames/$v)" "$subset/$v"; done
    fit_sets=("${sets[@]}" --set stage.appearance.options.epochs=1 --set stage.spr.options.warmup_epochs=1
        --set "data.test=$(realpath "$subset")" --set "data.labels=$(realpath ../shared/data/ped2/UCSDped2/Test)")
fi
/usr/bin/time -v "$vigil" run pipelines/ped2.toml "${fit_sets[@]}" --no-cache --out "$OUT/ped2-short" \
    2> >(tee "$OUT/ped2-short.time.txt" >&2)
grep -E '"frame_auroc"|"fit"' "$OUT/ped2-short/report.json" | head -5 | tee "$OUT/ped2-short.txt"

if [ -n "${FULL:-}" ]; then
    echo "== pipelines/ped2.toml to the end on the GPU (paper settings)"
    /usr/bin/time -v "$vigil" run pipelines/ped2.toml "${sets[@]}" --out "$OUT/ped2-full" \
        2> >(tee "$OUT/ped2-full.time.txt" >&2)
fi
echo "figures in $OUT"
