//! GFLOP/s of the convolution products of ped2-fast's network on one
//! thread, f32: as the kernels run them (columns read in place on AVX-512,
//! matmul.rs) against im2col into a buffer followed by `gemm`, for a
//! convolution's forward product (weights x columns) and its weight
//! gradient (output gradient x columns^T), 8 images to a chunk as in
//! training.
//!
//! `cargo bench -p vigil-plugin-cae --bench products`

use std::time::Instant;
use vigil_plugin_cae::columns::Taps;
use vigil_plugin_cae::config::Precision;
use vigil_plugin_cae::matmul::{f32_reads_in_place, matmul, matmul_to, Mat, Operand};

/// Input channels, image side, output channels.
const LAYERS: [(usize, usize, usize); 5] = [(15, 32, 16), (16, 16, 32), (32, 16, 16), (32, 8, 64), (64, 8, 64)];
const SAMPLES: usize = 8;
const RUNS: usize = 200;

fn values(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919 % 2001) as f32 / 1000.0) - 1.0).collect()
}

/// GFLOP/s of `flops` per run over RUNS runs of `f`, after one.
fn rate(flops: f64, mut f: impl FnMut()) -> f64 {
    f();
    let started = Instant::now();
    (0..RUNS).for_each(|_| f());
    flops * RUNS as f64 / started.elapsed().as_secs_f64() / 1e9
}

fn main() {
    println!("columns read in place by f32 products on this CPU: {}", f32_reads_in_place());
    println!("layer (in, side, out)   forward: kernels  im2col+gemm   weight gradient: kernels  im2col+gemm   (GFLOP/s, one thread)");
    for (cin, side, cout) in LAYERS {
        let taps = Taps::window(cin, 3, [side, side], SAMPLES, true);
        let (rows, cols) = (taps.rows(), SAMPLES * side * side);
        let (image, weight, grad) = (values(cin * cols), values(cout * rows), values(cout * cols));
        let columns = taps.over(&image, SAMPLES);
        let (mut out, mut dw, mut written) = (vec![0f32; cout * cols], vec![0f32; cout * rows], vec![0f32; rows * cols]);
        let flops = 2.0 * (cout * rows * cols) as f64;
        let in_place = Operand::Columns(&columns, false);
        let forward = rate(flops, || matmul(Precision::F32, cout, cols, rows, &mut out, Mat::rows(&weight, rows).into(), in_place));
        let gradient =
            rate(flops, || matmul_to(Precision::F32, cout, rows, cols, &mut dw, [1, cout], Mat::rows(&grad, cols).into(), in_place.t()));
        let forward_gemm = rate(flops, || {
            columns.write(&mut written);
            matmul(Precision::F32, cout, cols, rows, &mut out, Mat::rows(&weight, rows).into(), Mat::rows(&written, cols).into())
        });
        let gradient_gemm = rate(flops, || {
            columns.write(&mut written);
            matmul_to(
                Precision::F32,
                cout,
                rows,
                cols,
                &mut dw,
                [1, cout],
                Mat::rows(&grad, cols).into(),
                Mat::transposed(&written, cols).into(),
            )
        });
        println!(
            "({cin:2}, {side:2}, {cout:2})                   {forward:7.1}  {forward_gemm:11.1}                    {gradient:7.1}  {gradient_gemm:11.1}"
        );
    }
}
