//! Localizer figures on the UCSD Ped2 test set (all 2,010 frames):
//! detector speed next to onnxruntime's reference, and for each localizer
//! the share of anomalous frames where a box overlaps the anomaly mask.
//!
//!   cargo run --release -p vigil-plugin-localize --example ped2_localizers [-- --stride N] [--speed-only] [--engine onnxruntime]
//!
//! Reads the shared data folder ($VIGIL_DATA or ../shared/data). With
//! `--engine onnxruntime` the detector runs on ONNX Runtime's library from
//! ORT_DYLIB_PATH.

#[path = "../tests/common/mod.rs"]
mod ped2;

use ped2::{boxes_of_row, Coverage, Ped2};
use serde_json::{json, Value};
use std::time::Instant;
use vigil_plugin_localize::{DetectorLocalizer, MotionLocalizer};
use vigil_stage_api::{names, StageFactory, Tensor};
use vigil_stage_testkit as kit;

/// The detector's `input_size` choices: the model's 416 x 416 (what
/// onnxruntime's reference runs), and 416 x 288 cut to Ped2's aspect.
const INPUT_SIZES: [&str; 2] = ["model", "fit"];

/// Consecutive frames per batch, as the runtime would send them.
const BATCH: usize = 8;

fn main() {
    let argument = |name: &str| std::env::args().skip_while(|a| a != name).nth(1);
    let stride: u32 = argument("--stride").map(|s| s.parse().expect("--stride takes a number")).unwrap_or(1);
    let engine = argument("--engine").unwrap_or_else(|| "tract".into());
    let (Some(root), Some(model)) = (kit::shared_data("ped2"), kit::shared_data("models/yolox_nano.onnx")) else {
        std::process::exit(2);
    };
    let ped2 = Ped2::new(&root);
    let model = model.display().to_string();
    println!("machine: {} CPUs, {}", std::thread::available_parallelism().map_or(0, |n| n.get()), cpu_model());

    for input_size in INPUT_SIZES {
        speed(&ped2, &model, input_size, &engine);
    }
    if std::env::args().any(|a| a == "--speed-only") {
        return;
    }

    // Detector with motion completion from frame differences; its own
    // boxes (class >= 0) give the detector-only figure from the same run.
    for input_size in INPUT_SIZES {
        let options = json!({"model": model, "motion_source": "frame_difference", "input_size": input_size, "engine": engine});
        let (all, detections, seconds) = coverage::<DetectorLocalizer>(&ped2, options, stride, |b| b[4] >= 0.0);
        println!("detector only, input_size {input_size:5}:                       {detections}");
        println!(
            "detector + motion (frame difference), input_size {input_size:5}: {all}  [{:.1} ms/frame incl. JPEG and mask reading]",
            ms(seconds, all.frames)
        );
    }
    let options = json!({"motion_source": "frame_difference"});
    let (motion, _, seconds) = coverage::<MotionLocalizer>(&ped2, options, stride, |_| true);
    println!("motion (frame difference):           {motion}  [{:.1} ms/frame incl. JPEG and mask reading]", ms(seconds, motion.frames));
}

/// Detector time per frame on the first 60 frames of video 01, with the
/// reference program's settings (score > 0.3, NMS 0.45, no other filters).
fn speed(ped2: &Ped2, model: &str, input_size: &str, engine: &str) {
    let options = json!({
        "model": model, "input_size": input_size, "engine": engine, "score_threshold": 0.3, "min_area": 0.0, "cover_threshold": 1.0,
        "motion_completion": false
    });
    let mut stage = kit::into_localizer(kit::create::<DetectorLocalizer>(options).unwrap());
    let batches: Vec<_> = (0..60).map(|f| ped2.batch(1, &[f])).collect();
    stage.process(ped2.batch(1, &[0])).into_result().unwrap(); // warm-up
    let (started, cpu_started) = (Instant::now(), cpu_seconds());
    let mut boxes = 0;
    for batch in batches {
        let out = stage.process(batch).into_result().unwrap();
        boxes += boxes_of_row(out.get(names::BOXES).unwrap(), 0).len();
    }
    let (elapsed, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu_started);
    println!(
        "detector speed, {engine}, input_size {input_size:5}, video 01 frames 0-59: {:.1} ms/frame wall, {:.1} ms/frame CPU, {:.1} boxes/frame at \
         score 0.3 (onnxruntime reference on an idle machine: 5.4 ms, 15.8 boxes/frame)",
        ms(elapsed, 60),
        ms(cpu, 60),
        boxes as f64 / 60.0
    );
}

/// Runs stage `F` over every video in consecutive batches; tallies every
/// `stride`th frame for all boxes and for the boxes `keep` selects.
fn coverage<F: StageFactory>(ped2: &Ped2, options: Value, stride: u32, keep: impl Fn(&[f32; 5]) -> bool) -> (Coverage, Coverage, f64) {
    let mut stage = kit::into_localizer(kit::create::<F>(options).unwrap());
    let (mut all, mut selected) = (Coverage::default(), Coverage::default());
    let started = Instant::now();
    for (video, count) in ped2.videos() {
        let frames: Vec<u32> = (0..count).collect();
        for chunk in frames.chunks(BATCH) {
            let out = stage.process(ped2.batch(video, chunk)).into_result().unwrap();
            let boxes: &Tensor = out.get(names::BOXES).unwrap();
            for (row, &frame) in chunk.iter().enumerate().filter(|(_, &f)| f % stride == 0) {
                let found = boxes_of_row(boxes, row);
                let mask = ped2.mask(video, frame);
                all.add(&found, &mask);
                selected.add(&found.into_iter().filter(|b| keep(b)).collect::<Vec<_>>(), &mask);
            }
        }
    }
    (all, selected, started.elapsed().as_secs_f64())
}

fn ms(seconds: f64, frames: usize) -> f64 {
    1000.0 * seconds / frames.max(1) as f64
}

/// CPU time of this process so far (user + system), from /proc: on a
/// shared machine it varies less than wall time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum());
    ticks / 100.0 // USER_HZ is 100 on Linux
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into())
}
