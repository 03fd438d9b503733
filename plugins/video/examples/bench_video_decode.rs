//! Decode rate of the `video` stage, driven through the stage trait as the
//! runtime drives it, beside OpenCV's `VideoCapture` on the same file in the
//! same run when a Python with cv2 is at hand (`$VIGIL_BENCH_PYTHON`, else
//! `python3`).
//!
//! ```text
//! cargo run --release -p vigil-plugin-video --example bench_video_decode [-- VIDEO [BATCH]]
//! ```
//! Defaults: the shared data's `videos/vtest.avi`, batch 32.

use std::path::PathBuf;
use vigil_plugin_video::VideoStage;
use vigil_stage_testkit::{machine_description, run_python, shared_data, time_decoder};

const RUNS: usize = 3;

const OPENCV: &str = r#"
import sys, time, cv2
best, k = 1e9, 0
for _ in range(3):
    cap = cv2.VideoCapture(sys.argv[1]); t = time.perf_counter(); k = 0
    while cap.read()[0]: k += 1
    best = min(best, time.perf_counter() - t)
print(k, best, cv2.__version__)
"#;

fn main() {
    let batch: u32 = std::env::args().nth(2).and_then(|b| b.parse().ok()).unwrap_or(32);
    let video = std::env::args().nth(1).map(PathBuf::from).or_else(|| shared_data("videos/vtest.avi"));
    let Some(video) = video else { std::process::exit(2) };
    let (frames, seconds) = time_decoder::<VideoStage>(std::slice::from_ref(&video), batch, RUNS).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let name = video.file_name().map_or("video".into(), |n| n.to_string_lossy().into_owned());
    println!("Machine: {}; batch {batch}, best of {RUNS} runs", machine_description());
    println!(
        "| {name} | vigil `video` (FFmpeg via video-rs, pooled buffers) | {frames} frames | {seconds:.3} s | {:.0} frames/s |",
        frames as f64 / seconds
    );
    match run_python(OPENCV, &[video.as_os_str()]) {
        Ok(out) => {
            let f: Vec<&str> = out.split_whitespace().collect();
            let (n, s): (f64, f64) = (f[0].parse().unwrap_or(0.0), f[1].parse().unwrap_or(f64::NAN));
            println!("| {name} | OpenCV {} VideoCapture (FFmpeg) | {n} frames | {s:.3} s | {:.0} frames/s |", f[2], n / s);
            println!("Ratio vigil / OpenCV: {:.2}", (frames as f64 / seconds) / (n / s));
        }
        Err(e) => println!("OpenCV comparison skipped: {e}"),
    }
}
