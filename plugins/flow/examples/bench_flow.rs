//! Flow benchmark: EPE and ms per pair on the FlyingChairs pairs of the
//! shared data for every preset, OpenCV's DIS on the same pairs in the same
//! run when a Python with cv2 is available (VIGIL_BENCH_PYTHON, default
//! `python3`), and frames/s of the `flow` stage's work on Ped2 test frames
//! (360x240 computed on the 512x384 grid).
//!
//! cargo run --release -p vigil-plugin-flow --example bench_flow

use rayon::prelude::*;
use std::path::Path;
use std::time::Instant;
use vigil_plugin_flow::{estimate_flow, estimate_flow_on_grid, middlebury, FlowField, FlowParams, GrayImage, Preset};
use vigil_stage_testkit::shared_data;

const REPEATS: usize = 5;
const PED2_FRAMES: usize = 61;

fn gray(path: &Path) -> GrayImage {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    let (w, h) = img.dimensions();
    GrayImage::from_rgb(img.as_raw(), w as usize, h as usize)
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
    let zero: f64 = pairs.iter().map(|(a, _, gt)| FlowField::zeros(a.width, a.height).endpoint_error(gt)).sum::<f64>()
        / pairs.len() as f64;
    println!("zero flow      EPE {zero:.3} px");
    let mut results = Vec::new();
    for preset in [Preset::Ultrafast, Preset::Fast, Preset::Medium] {
        let params = FlowParams::preset(preset);
        let (mut errs, mut ms) = (Vec::new(), Vec::new());
        for (a, b, gt) in pairs {
            estimate_flow(a, b, &params).unwrap();
            let start = Instant::now();
            let mut flow = None;
            for _ in 0..REPEATS {
                flow = Some(estimate_flow(a, b, &params).unwrap());
            }
            ms.push(start.elapsed().as_secs_f64() * 1000.0 / REPEATS as f64);
            errs.push(flow.unwrap().endpoint_error(gt));
        }
        let (epe, time) = (mean(&errs), mean(&ms));
        let per_pair: Vec<String> = errs.iter().map(|e| format!("{e:.2}")).collect();
        println!("vigil {:10} EPE {epe:.3} px  per pair [{}]  {time:.1} ms/pair", format!("{preset:?}").to_lowercase(), per_pair.join(", "));
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
        println!("OpenCV reference not run: {python} {} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
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

fn ped2_throughput(dir: &Path) {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let frames: Vec<GrayImage> = files.iter().take(PED2_FRAMES).map(|p| gray(p)).collect();
    let (w, h) = (frames[0].width, frames[0].height);
    for preset in [Preset::Ultrafast, Preset::Fast, Preset::Medium] {
        let params = FlowParams::preset(preset);
        let start = Instant::now();
        (0..frames.len() - 1).into_par_iter().for_each(|i| {
            estimate_flow_on_grid(&frames[i], &frames[i + 1], Some((512, 384)), &params).unwrap();
        });
        let secs = start.elapsed().as_secs_f64();
        println!(
            "ped2 {w}x{h} -> 512x384 grid, {:10} {:.1} frames/s ({} pairs, {:.1} ms/pair wall)",
            format!("{preset:?}").to_lowercase(),
            (frames.len() - 1) as f64 / secs,
            frames.len() - 1,
            secs * 1000.0 / (frames.len() - 1) as f64
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
            let name = format!("dis-{}", format!("{preset:?}").to_lowercase());
            if let Some((_, cv_epe, cv_ms)) = reference.iter().find(|r| r.0 == name) {
                println!("{name}: EPE vigil/opencv {:.2}, time vigil/opencv {:.2}", epe / cv_epe, ms / cv_ms);
            }
        }
    }
    if let Some(ped2) = shared_data("ped2/testing/frames/01") {
        ped2_throughput(&ped2);
    }
}
