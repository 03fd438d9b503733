//! Decode rate of the `frames` stage over a dataset's frame folders, driven
//! through the stage trait as the runtime drives it, beside OpenCV's
//! `imread` of the same files in the same run when a Python with cv2 is at
//! hand (`$VIGIL_BENCH_PYTHON`, else `python3`).
//!
//! ```text
//! cargo run --release -p vigil-plugin-frames --example bench_frames_decode [-- FRAMES_ROOT [BATCH]]
//! ```
//! Defaults: the shared data's `ped2/testing/frames` (12 folders, 2,010 JPEGs), batch 32.

use std::path::PathBuf;
use vigil_plugin_frames::FramesStage;
use vigil_stage_testkit::{machine_description, run_python, shared_data, time_decoder};

const RUNS: usize = 3;

const OPENCV: &str = r#"
import sys, time, glob, os, cv2
files = sorted(f for d in sys.argv[1:] for f in glob.glob(os.path.join(d, "*")))
best = 1e9
for _ in range(3):
    t = time.perf_counter()
    for f in files: cv2.imread(f)
    best = min(best, time.perf_counter() - t)
print(len(files), best, cv2.__version__, cv2.getNumThreads())
"#;

fn main() {
    let batch: u32 = std::env::args().nth(2).and_then(|b| b.parse().ok()).unwrap_or(32);
    let root = std::env::args().nth(1).map(PathBuf::from).or_else(|| shared_data("ped2/testing/frames"));
    let Some(root) = root else { std::process::exit(2) };
    let folders: Vec<PathBuf> = match vigil_datasets::resolve(&root) {
        Ok(videos) => videos.into_iter().map(|v| v.path).collect(),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1)
        }
    };
    let (frames, seconds) = time_decoder::<FramesStage>(&folders, batch, RUNS).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let shown = root.canonicalize().unwrap_or_else(|_| root.clone());
    let name = format!("{} ({} folders)", shown.display(), folders.len());
    println!("Machine: {}; batch {batch}, best of {RUNS} runs", machine_description());
    println!(
        "| {name} | vigil `frames` (image crate, rayon) | {frames} frames | {seconds:.3} s | {:.0} frames/s |",
        frames as f64 / seconds
    );
    let args: Vec<&std::ffi::OsStr> = folders.iter().map(|f| f.as_os_str()).collect();
    match run_python(OPENCV, &args) {
        Ok(out) => {
            let f: Vec<&str> = out.split_whitespace().collect();
            let (n, s): (f64, f64) = (f[0].parse().unwrap_or(0.0), f[1].parse().unwrap_or(f64::NAN));
            println!("| {name} | OpenCV {} imread, one thread | {n} frames | {s:.3} s | {:.0} frames/s |", f[2], n / s);
            println!("Ratio vigil / OpenCV: {:.2}", (frames as f64 / seconds) / (n / s));
        }
        Err(e) => println!("OpenCV comparison skipped: {e}"),
    }
}
