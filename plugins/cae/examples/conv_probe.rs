//! Where does a training step spend its time? Times the forward and
//! backward of single layers of the autoencoder at batch 256 on burn's flex
//! backend: a 3x3 convolution the way burn computes it against a plain
//! matrix product of the same multiply-adds (what an im2col convolution
//! would cost at best).
//!
//! `cargo run --release -p vigil-plugin-cae --example conv_probe`

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use std::time::Instant;

fn secs(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn main() {
    let device = Device::flex().autodiff();
    let b = 256;
    for (c_in, c_out, s) in [(32usize, 32usize, 32usize), (64, 64, 16), (128, 128, 8), (256, 128, 8)] {
        let x = Tensor::<4>::random([b, c_in, s, s], Distribution::Default, &device).require_grad();
        let w = Tensor::<4>::random([c_out, c_in, 3, 3], Distribution::Default, &device).require_grad();
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let mut y = None;
        let fwd = secs(|| y = Some(conv2d(x.clone(), w.clone(), None, options.clone())));
        let loss = y.unwrap().sum();
        let bwd = secs(|| {
            let _ = loss.backward();
        });
        // Same multiply-adds as one matrix product.
        let a = Tensor::<2>::random([b * s * s, 9 * c_in], Distribution::Default, &device).require_grad();
        let m = Tensor::<2>::random([9 * c_in, c_out], Distribution::Default, &device).require_grad();
        let mut z = None;
        let mfwd = secs(|| z = Some(a.clone().matmul(m.clone())));
        let mloss = z.unwrap().sum();
        let mbwd = secs(|| {
            let _ = mloss.backward();
        });
        let gflop = 2.0 * (b * s * s * 9 * c_in * c_out) as f64 / 1e9;
        println!(
            "conv {c_in}->{c_out} at {s}x{s}: conv2d fwd {fwd:.3} s bwd {bwd:.3} s | matmul fwd {mfwd:.3} s bwd {mbwd:.3} s | {gflop:.1} GFLOP per pass"
        );
    }
}
