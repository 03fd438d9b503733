//! Flow benchmark: EPE and ms per pair on the FlyingChairs pairs of the
//! shared data for every preset, OpenCV's DIS on the same pairs in the same
//! run when a Python with cv2 is available (VIGIL_BENCH_PYTHON, default
//! `python3`), and frames/s of the `flow` stage on Ped2 test frames (360x240
//! computed on the 512x384 grid). Wall time depends on what else runs on the
//! machine; the process CPU time per pair is printed beside it.
//!
//! cargo run --release -p vigil-plugin-flow --example bench_flow

use std::path::Path;
use std::time::Instant;
use vigil_plugin_flow::{estimate_flow, middlebury, FlowField, FlowParams, FlowStage, GrayImage, Preset};
use vigil_stage_api::Flow;
use vigil_stage_testkit::{frames_batch, shared_data};

const REPEATS: usize = 5;
const PED2_FRAMES: usize = 61;

const PRESETS: [Preset; 3] = [Preset::Ultrafast, Preset::Fast, Preset::Medium];

fn rgb(path: &Path) -> image::RgbImage {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8()
}

fn gray(path: &Path) -> GrayImage {
    let img = rgb(path);
    let (w, h) = img.dimensions();
    GrayImage::from_rgb(img.as_raw(), w as usize, h as usize)
}

/// CPU seconds this process has used (user + system), from /proc (Linux;
/// USER_HZ = 100).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

fn flyingchairs(root: &Path) -> Vec<(GrayImage, GrayImage, FlowField)> {
    (0..3)
        .map(|i| {
            let stem = root.join(format!("000000{i}"));
            let file = |suffix: &str| stem.with_file_name(format!("000000{i}-{suffix}"));
            (gray(&file("img0.ppm")), gray(&file("img1.ppm")), middlebury::read_flo(&file("gt.flo")).unwrap())
        })
        .collect()
}

/// Mean EPE and ms per pair of each preset; prints per-pair figures.
fn bench_presets(pairs: &[(GrayImage, GrayImage, FlowField)]) -> Vec<(Preset, f64, f64)> {
    let zero: f64 = pairs.iter().map(|(a, _, gt)| FlowField::zeros(a.width, a.height).endpoint_error(gt)).sum::<f64>() / pairs.len() as f64;
    println!("zero flow      EPE {zero:.3} px");
    let mut results = Vec::new();
    for preset in PRESETS {
        let params = FlowParams::preset(preset);
        let (mut errs, mut ms, mut cpu_ms) = (Vec::new(), Vec::new(), Vec::new());
        for (a, b, gt) in pairs {
            estimate_flow(a, b, &params).unwrap();
            let (start, cpu) = (Instant::now(), cpu_seconds());
            let mut flow = None;
            for _ in 0..REPEATS {
                flow = Some(estimate_flow(a, b, &params).unwrap());
            }
            ms.push(start.elapsed().as_secs_f64() * 1000.0 / REPEATS as f64);
            cpu_ms.push((cpu_seconds() - cpu) * 1000.0 / REPEATS as f64);
            errs.push(flow.unwrap().endpoint_error(gt));
        }
        let (epe, time) = (mean(&errs), mean(&ms));
        let per_pair: Vec<String> = errs.iter().map(|e| format!("{e:.2}")).collect();
        println!(
            "vigil {:10} EPE {epe:.3} px  per pair [{}]  {time:.1} ms/pair  (CPU {:.1} ms/pair)",
            preset,
            per_pair.join(", "),
            mean(&cpu_ms)
        );
        results.push((preset, epe, time));
    }
    results
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Runs the OpenCV reference; returns (method, EPE, ms) lines it printed.
fn opencv_reference(script: &Path) -> Option<Vec<(String, f64, f64)>> {
    let python = std::env::var("VIGIL_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python).arg(script).env("THREADS", "2").output().ok()?;
    if !out.status.success() {
        println!(
            "OpenCV reference not run: {python} {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    let parse = |line: &str| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let epe = words.get(2)?.parse().ok()?;
        let ms = words.iter().rev().nth(1)?.parse().ok()?;
        Some((words[0].to_string(), epe, ms))
    };
    Some(text.lines().filter_map(parse).collect())
}

/// The `flow` stage itself on one batch of consecutive Ped2 frames.
fn ped2_throughput(dir: &Path) {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let images: Vec<image::RgbImage> = files.iter().take(PED2_FRAMES).map(|p| rgb(p)).collect();
    let (w, h) = (images[0].width() as usize, images[0].height() as usize);
    let frames: Vec<Vec<u8>> = images.into_iter().map(|i| i.into_raw()).collect();
    for preset in PRESETS {
        let mut stage = FlowStage::new(FlowParams::preset(preset), Some((512, 384)));
        let batch = frames_batch(frames.clone(), h, w);
        let (start, cpu) = (Instant::now(), cpu_seconds());
        stage.process(batch).into_result().unwrap();
        let (secs, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        let pairs = (PED2_FRAMES - 1) as f64;
        println!(
            "ped2 {w}x{h} -> 512x384 grid, stage {:10} {:.1} frames/s ({pairs} pairs, {:.1} ms/pair wall, CPU {:.1} ms/pair)",
            preset,
            pairs / secs,
            secs * 1000.0 / pairs,
            cpu * 1000.0 / pairs
        );
    }
}

fn main() {
    println!("threads {}", rayon::current_num_threads());
    let Some(chairs) = shared_data("flow/flyingchairs") else { return };
    let pairs = flyingchairs(&chairs);
    let ours = bench_presets(&pairs);
    let script = chairs.join("../../../bench/flow_opencv.py");
    if let Some(reference) = opencv_reference(&script) {
        for (preset, epe, ms) in &ours {
            let name = format!("dis-{preset}");
            if let Some((_, cv_epe, cv_ms)) = reference.iter().find(|r| r.0 == name) {
                println!("{name}: EPE vigil/opencv {:.2}, time vigil/opencv {:.2}", epe / cv_epe, ms / cv_ms);
            }
        }
    }
    if let Some(ped2) = shared_data("ped2/testing/frames/01") {
        ped2_throughput(&ped2);
    }
}
