//! Times the `cae` model on the CPU: one training step at batch 64 and 256
//! and one eval forward (per-sample errors) at 256, F = 32, 15 x 32 x 32
//! cubes, computed two ways: the CPU kernels the stage trains with
//! (kernels.rs) and burn-flex's own autodiff. When a Python with torch is
//! found (`$VIGIL_TORCH_PYTHON`, else /root/.cache/torchvenv/bin/python3), runs
//! the PyTorch reference (benches/cae_pytorch.py at the workspace root) in
//! the same run and prints the ratios.
//!
//! `cargo bench -p vigil-plugin-cae --bench step` (RAYON_NUM_THREADS sets the threads).

use burn::tensor::{Device, Tensor, TensorData};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use vigil_plugin_cae::config::Precision;
use vigil_plugin_cae::kernels::layers;
use vigil_plugin_cae::model::BandModel;
use vigil_plugin_cae::net::Autoencoder;
use vigil_plugin_cae::transfers::Transfers;

const DIMS: [usize; 3] = [15, 15, 32];

/// Mean seconds of `runs` calls after `warmup` calls.
fn time(warmup: usize, runs: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let t = Instant::now();
    for _ in 0..runs {
        f();
    }
    t.elapsed().as_secs_f64() / runs as f64
}

struct Figures {
    step64: f64,
    step256: f64,
    eval256: f64,
}

/// Batch-256 cube values in [0, 1], [B, C, S, S].
fn cubes(count: usize) -> Vec<f32> {
    (0..count * DIMS[0] * DIMS[2] * DIMS[2]).map(|i| ((i.wrapping_mul(2_654_435_761) >> 13) & 255) as f32 / 255.0).collect()
}

fn tensor(values: &[f32], device: &Device) -> Tensor<4> {
    let [c, _, s] = DIMS;
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len() / (c * s * s), c, s, s]), device)
}

fn figures(kernels: bool) -> Figures {
    let plain = Device::flex();
    let train = plain.clone().autodiff();
    let mut model = BandModel::new(Autoencoder::new(DIMS[0], DIMS[1], 32, 0, &train));
    let ops = layers(DIMS[0], DIMS[1], 32);
    let data = cubes(256);
    let ones = vec![1.0f32; 256];
    let mut step = |b: usize| {
        let x = &data[..b * DIMS[0] * DIMS[2] * DIMS[2]];
        let loss = if kernels {
            model.kernel_step(&ops, Precision::F32, x, x, &ones[..b], DIMS, 1e-3, &plain, &train)
        } else {
            model.step(tensor(x, &train), tensor(x, &train), &ones[..b], 1e-3, &train, &Transfers::default())
        };
        assert!(loss.expect("step").is_finite());
    };
    let step64 = time(2, 5, || step(64));
    let step256 = time(2, 3, || step(256));
    let eval256 = time(1, 3, || {
        let errors = if kernels {
            model.kernel_errors(&ops, Precision::F32, &data, &data, DIMS)
        } else {
            model.errors(tensor(&data, &plain), tensor(&data, &plain), &Transfers::default())
        };
        errors.expect("errors");
    });
    Figures { step64, step256, eval256 }
}

fn torch_python() -> Option<PathBuf> {
    let candidate =
        std::env::var_os("VIGIL_TORCH_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root/.cache/torchvenv/bin/python3"));
    let ok = Command::new(&candidate).args(["-c", "import torch"]).output().map(|o| o.status.success()).unwrap_or(false);
    ok.then_some(candidate)
}

fn torch_script() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Some(root.join("benches/cae_pytorch.py")).filter(|p| p.exists())
}

/// Runs the PyTorch reference and reads its "batch B: train step X s ..., eval forward Y s" lines.
fn torch_figures(python: &Path, script: &Path, threads: &str) -> Option<Figures> {
    let out = Command::new(python).arg(script).env("THREADS", threads).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    let mut f = Figures { step64: f64::NAN, step256: f64::NAN, eval256: f64::NAN };
    for line in text.lines() {
        let num = |after: &str| -> Option<f64> { line.split(after).nth(1)?.split_whitespace().next()?.parse().ok() };
        if line.starts_with("batch 64:") {
            f.step64 = num("train step ")?;
        } else if line.starts_with("batch 256:") {
            f.step256 = num("train step ")?;
            f.eval256 = num("eval forward ")?;
        }
    }
    Some(f)
}

fn main() {
    let threads = std::env::var("RAYON_NUM_THREADS")
        .unwrap_or_else(|_| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).to_string());
    println!("cae F = 32, 15 x 32 x 32 cubes, threads {threads}");
    let k = figures(true);
    println!("kernels   train step batch 64 {:.3} s | batch 256 {:.3} s | eval forward 256 {:.3} s", k.step64, k.step256, k.eval256);
    let b = figures(false);
    println!("burn-flex train step batch 64 {:.3} s | batch 256 {:.3} s | eval forward 256 {:.3} s", b.step64, b.step256, b.eval256);
    let ratio = |name: &str, a: &Figures, b: &Figures| {
        println!(
            "ratio {name}: step 64 {:.2}x | step 256 {:.2}x | eval 256 {:.2}x",
            a.step64 / b.step64,
            a.step256 / b.step256,
            a.eval256 / b.eval256
        )
    };
    ratio("burn-flex/kernels", &b, &k);
    let (Some(python), Some(script)) = (torch_python(), torch_script()) else {
        println!("PyTorch reference skipped: no Python with torch (set VIGIL_TORCH_PYTHON) or no cae_pytorch.py");
        return;
    };
    if let Some(t) = torch_figures(&python, &script, &threads) {
        println!("torch     train step batch 64 {:.3} s | batch 256 {:.3} s | eval forward 256 {:.3} s", t.step64, t.step256, t.eval256);
        ratio("kernels/torch", &k, &t);
        ratio("burn-flex/torch", &b, &t);
    }
}
