//! Times the `cae` stage on the CPU: one training step at batch 64 and 256
//! and one eval forward (per-sample errors) at 256, through the same calls
//! the fit loop makes. When a Python with torch is found (`$VIGIL_TORCH_PYTHON`,
//! else /root/.cache/torchvenv/bin/python3), runs the PyTorch reference
//! (benches/cae_pytorch.py at the workspace root, else the shared copy) in
//! the same run and prints the ratios.
//!
//! `cargo bench -p vigil-plugin-cae --bench step` (RAYON_NUM_THREADS sets burn's threads).

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use vigil_plugin_cae::Cae;
use vigil_stage_api::{Batch, FrameId, ReconstructorBox, Tensor};
use vigil_stage_testkit::{create, into_reconstructor};

fn stage(count: usize) -> ReconstructorBox {
    let mut s = into_reconstructor(create::<Cae>(json!({"features_root": 32})).expect("cae"));
    let data: Vec<u8> = (0..count * 15 * 32 * 32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let ids = (0..count as u32).map(|frame| FrameId { video: 0, frame }).collect();
    let batch = Batch::new(ids)
        .with("appearance", Tensor::from_vec(data, &[count, 15, 32, 32]))
        .with("band", Tensor::from_vec(vec![0u32; count], &[count]));
    s.fit_begin(batch).expect("fit_begin");
    s
}

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

fn burn_figures() -> Figures {
    let mut s = stage(256);
    let idx: Vec<u32> = (0..256).collect();
    let ones = vec![1.0f32; 256];
    let mut step = |b: usize| {
        let loss = s.step(idx[..b].into(), ones[..b].into()).expect("step");
        assert!(loss.is_finite());
    };
    let step64 = time(2, 5, || step(64));
    let step256 = time(2, 3, || step(256));
    let eval256 = time(1, 3, || {
        s.errors(idx.as_slice().into()).expect("errors");
    });
    Figures { step64, step256, eval256 }
}

fn torch_python() -> Option<PathBuf> {
    let candidate = std::env::var_os("VIGIL_TORCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root/.cache/torchvenv/bin/python3"));
    let ok = Command::new(&candidate).args(["-c", "import torch"]).output().map(|o| o.status.success()).unwrap_or(false);
    ok.then_some(candidate)
}

fn torch_script() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    [root.join("benches/cae_pytorch.py"), root.join("../shared/bench/cae_pytorch.py")].into_iter().find(|p| p.exists())
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
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).to_string());
    println!("burn 0.22 flex, features_root 32, threads {threads}");
    let b = burn_figures();
    println!("burn  train step batch 64 {:.3} s | batch 256 {:.3} s | eval forward 256 {:.3} s", b.step64, b.step256, b.eval256);
    let (Some(python), Some(script)) = (torch_python(), torch_script()) else {
        println!("PyTorch reference skipped: no Python with torch (set VIGIL_TORCH_PYTHON) or no cae_pytorch.py");
        return;
    };
    if let Some(t) = torch_figures(&python, &script, &threads) {
        println!("torch train step batch 64 {:.3} s | batch 256 {:.3} s | eval forward 256 {:.3} s", t.step64, t.step256, t.eval256);
        println!(
            "ratio burn/torch: step 64 {:.2}x | step 256 {:.2}x | eval 256 {:.2}x",
            b.step64 / t.step64,
            b.step256 / t.step256,
            b.eval256 / t.eval256
        );
    }
}
