//! Issue 12, end to end on a small synthetic scene: `vigil fit` then
//! `vigil score` on the same videos gives `vigil run`'s frame scores; scoring
//! in small chunks gives the scores of scoring in large ones; a bad bundle
//! or input is one clear error; events are valid JSON Lines whose frames are
//! exactly the frames scored above the threshold.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use vigil_tests::*;

/// The scene and a bundle fitted on it, made once for every test here.
fn fixture() -> &'static FittedScene {
    static FIXTURE: OnceLock<FittedScene> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        fit_scene("score-e2e", &vigil_scene::SceneConfig { seed: 3, videos: 2, frames_per_video: 40, ..Default::default() })
    })
}

/// `vigil score MODEL INPUT --out OUT` with `extra` arguments.
fn score(model: &Path, input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<String> =
        ["score", model.to_str().unwrap(), input.to_str().unwrap(), "--out", out.to_str().unwrap()].map(String::from).to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    vigil_in(&fixture().work, &args)
}

/// scores.csv as (video, frame) -> score.
fn scores(dir: &Path) -> BTreeMap<(String, u32), f32> {
    let text = std::fs::read_to_string(dir.join("scores.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("video,frame,score,label"));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            ((fields[0].to_string(), fields[1].parse().unwrap()), fields[2].parse().unwrap())
        })
        .collect()
}

fn max_difference(a: &BTreeMap<(String, u32), f32>, b: &BTreeMap<(String, u32), f32>) -> f32 {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "the same frames");
    a.iter().map(|(k, v)| (v - b[k]).abs() / v.abs().max(1.0)).fold(0.0, f32::max)
}

/// A copy of the fixture's bundle, to break.
fn bundle_copy(name: &str) -> PathBuf {
    let copy = fixture().work.join(name);
    let _ = std::fs::remove_dir_all(&copy);
    copy_dir(&fixture().model, &copy);
    copy
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn fit_then_score_gives_the_frame_scores_of_run() {
    let f = fixture();
    let run_out = f.work.join("run");
    succeeded(&demo_command("run", &f.work, &f.scene, &["--out", run_out.to_str().unwrap()]));
    let scored = f.work.join("scored");
    let log = succeeded(&score(&f.model, &f.scene.frames_root, &scored, &[]));
    assert!(log.contains("frames/s"), "a progress line with frames/s:\n{log}");
    let (run, new) = (scores(&run_out), scores(&scored));
    assert_eq!(run.len(), 80);
    let difference = max_difference(&run, &new);
    println!("fit + score against run: largest relative difference {difference:e}");
    assert!(difference <= 1e-5, "fit + score differ from run by {difference}");
    let boxes = |dir: &Path| std::fs::read_to_string(dir.join("boxes.csv")).unwrap().lines().count();
    assert_eq!(boxes(&run_out), boxes(&scored), "one row per scored box in both");

    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(f.model.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(bundle["threshold"]["rule"], "quantile");
    assert_eq!(bundle["geometry"]["frame_sizes"], serde_json::json!([[160, 240]]));
    assert!(bundle["fingerprint"]["parts"]["data files"].is_string());
    let stages: Vec<&str> = bundle["stages"].as_array().unwrap().iter().map(|s| s["plugin"].as_str().unwrap()).collect();
    assert_eq!(stages, ["frames", "flow", "motion", "cae", "cae", "spr", "zscore"]);
    assert!(!f.work.join("model.work").exists() && !f.work.join("model.next").exists(), "no work or temporary folder left");
}

#[test]
fn box_height_normalization_scores_new_footage_as_run_does_with_the_lines_from_the_fit() {
    let f = fixture();
    let by_height = ["--set", "stage.score.options.normalize=box_height"];
    let model = f.work.join("model-by-height");
    succeeded(&demo_command("fit", &f.work, &f.scene, &[&by_height[..], &["--out", model.to_str().unwrap()]].concat()));
    let run_out = f.work.join("run-by-height");
    succeeded(&demo_command("run", &f.work, &f.scene, &[&by_height[..], &["--out", run_out.to_str().unwrap()]].concat()));
    let scored = f.work.join("scored-by-height");
    succeeded(&score(&model, &f.scene.frames_root, &scored, &[]));
    let difference = max_difference(&scores(&run_out), &scores(&scored));
    assert!(difference <= 1e-5, "fit + score differ from run by {difference}");

    // Every band of every reconstructor has its line in the bundle, and the
    // scores are not the band z-scores of the same fit.
    let record = model.join("bundle.json");
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    for (id, bands) in json["members"].as_array().unwrap().iter().map(|m| (&m[0], &m[1])) {
        for band in bands.as_array().unwrap() {
            let height = &band["height"];
            assert_eq!(height["count"], band["count"], "{id}: {band}");
            assert!(height["slope"].as_str().unwrap().parse::<f64>().unwrap().is_finite(), "{id}: {band}");
        }
    }
    let banded = f.work.join("run-banded");
    let band = ["--set", "stage.score.options.normalize=band", "--out", banded.to_str().unwrap()];
    succeeded(&demo_command("run", &f.work, &f.scene, &band));
    assert!(max_difference(&scores(&banded), &scores(&run_out)) > 1e-3, "normalize changes the scores");

    // A bundle without the lines (as written before they were recorded).
    for member in json["members"].as_array_mut().unwrap() {
        for band in member[1].as_array_mut().unwrap() {
            band.as_object_mut().unwrap().remove("height");
        }
    }
    std::fs::write(&record, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let e = failed(&score(&model, &f.scene.frames_root, &f.work.join("scored-no-lines"), &[]));
    assert!(e.contains("needs input `height_stats.appearance`") && e.contains("fit it again"), "{e}");
}

#[test]
fn scoring_in_small_chunks_equals_scoring_in_one() {
    let f = fixture();
    let (small, whole) = (f.work.join("chunk-16"), f.work.join("chunk-all"));
    succeeded(&score(&f.model, &f.scene.frames_root, &small, &["--chunk", "16"]));
    succeeded(&score(&f.model, &f.scene.frames_root, &whole, &["--chunk", "1000"]));
    assert_eq!(scores(&small), scores(&whole), "the same frame scores, to the bit");
    let read = |dir: &Path, name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    assert_eq!(read(&small, "boxes.csv"), read(&whole, "boxes.csv"));
    assert_eq!(read(&small, "events.jsonl"), read(&whole, "events.jsonl"));
}

#[test]
fn events_are_json_lines_of_the_frames_above_the_threshold() {
    let f = fixture();
    let out = f.work.join("events");
    // The median frame score as threshold, so that there are several events.
    let probe = f.work.join("events-probe");
    succeeded(&score(&f.model, &f.scene.frames_root, &probe, &[]));
    let all = scores(&probe).into_values().collect::<Vec<_>>();
    let mut sorted = all.clone();
    sorted.sort_by(f32::total_cmp);
    let threshold = sorted[sorted.len() / 2].to_string();
    let run = score(&f.model, &f.scene.frames_root, &out, &["--threshold", &threshold, "--events", "-"]);
    succeeded(&run);
    let file = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    assert_eq!(text(&run.stdout), file, "--events - prints the same lines");
    let events: Vec<Value> = file.lines().map(|l| serde_json::from_str(l).expect("each line is one JSON object")).collect();
    assert!(events.len() >= 2, "{file}");
    let threshold: f32 = threshold.parse().unwrap();
    let mut in_events = std::collections::BTreeSet::new();
    for e in &events {
        assert_eq!(e["threshold"].as_f64().unwrap() as f32, threshold);
        let (start, end, peak) =
            (e["start"].as_u64().unwrap() as u32, e["end"].as_u64().unwrap() as u32, e["peak_frame"].as_u64().unwrap() as u32);
        assert!(start <= peak && peak <= end, "{e}");
        for frame in start..=end {
            assert!(in_events.insert((e["video"].as_str().unwrap().to_string(), frame)), "frames of two events overlap: {e}");
        }
    }
    let scores = scores(&out);
    let above: std::collections::BTreeSet<(String, u32)> = scores.iter().filter(|(_, &s)| s > threshold).map(|(k, _)| k.clone()).collect();
    assert_eq!(in_events, above, "an event's frames are exactly the frames scored above the threshold");
    for e in &events {
        let key = (e["video"].as_str().unwrap().to_string(), e["peak_frame"].as_u64().unwrap() as u32);
        assert_eq!(e["peak_score"].as_f64().unwrap() as f32, scores[&key], "{e}");
    }

    // report.html in a real browser: every event marked on its video's
    // timeline, the top ones at their peak frame, the page not blank.
    let Some(page) = browser::render(&out.join("report.html"), &out) else { return };
    println!("report.html: {:?}, {:.1}% inked, {} colours", page.body, 100.0 * page.inked, page.colours);
    assert_eq!(page.body.get("data-rendered").map(String::as_str), Some("yes"), "{:?}", page.body);
    assert_eq!(page.count("data-events-drawn"), events.len());
    assert_eq!(page.count("data-snapshots-drawn"), events.len().min(vigil_runtime::report::EVENT_FRAMES));
    assert!(page.count("data-boxes-drawn") >= 1);
    assert!(page.inked > 0.05 && page.colours > 100, "the screenshot is not blank: {:.3} inked, {} colours", page.inked, page.colours);
}

#[test]
fn bad_bundles_and_inputs_are_one_clear_error_each() {
    let f = fixture();
    let input = f.scene.frames_root.clone();
    let out = f.work.join("bad-out");

    let missing = bundle_copy("bad-missing");
    std::fs::remove_file(missing.join("appearance/weights.safetensors")).unwrap();
    let e = failed(&score(&missing, &input, &out, &[]));
    assert!(e.contains(&format!("{}: missing from the bundle", missing.join("appearance/weights.safetensors").display())), "{e}");

    let corrupt = bundle_copy("bad-corrupt");
    std::fs::write(corrupt.join("bundle.json"), b"{\"format\": \"vigil-bundle/1\", ").unwrap();
    let e = failed(&score(&corrupt, &input, &out, &[]));
    assert!(e.contains(&format!("{}: corrupt", corrupt.join("bundle.json").display())), "{e}");

    let weights = bundle_copy("bad-weights");
    let path = weights.join("appearance/weights.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let e = failed(&score(&weights, &input, &out, &[]));
    assert!(e.contains(&format!("{}: corrupt", path.display())), "{e}");

    let old = bundle_copy("bad-version");
    let record = old.join("bundle.json");
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    json["stages"][3]["version"] = "0.0.1".into();
    std::fs::write(&record, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let e = failed(&score(&old, &input, &out, &[]));
    assert!(e.contains(&format!("{}: stage `appearance` was fitted with plugin `cae` 0.0.1", record.display())), "{e}");
    assert!(e.contains("fit again"), "{e}");

    // bundle.json is the one file without a hash: its cube geometry must be its pipeline's.
    let geometry = bundle_copy("bad-geometry");
    let record = geometry.join("bundle.json");
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    json["geometry"]["size"] = 3200.into();
    std::fs::write(&record, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let e = failed(&score(&geometry, &input, &out, &[]));
    assert!(e.contains(&format!("{}: corrupt: its cube geometry", record.display())) && e.contains("3200"), "{e}");

    // Files of a model fitted with another pipeline (24-pixel cubes) copied in.
    let other_fit = f.work.join("other-fit");
    succeeded(&demo_command("fit", &f.work, &f.scene, &["--set", "cubes.size=24", "--out", other_fit.to_str().unwrap()]));
    let mixed = bundle_copy("bad-mixed");
    std::fs::copy(other_fit.join("pipeline.toml"), mixed.join("pipeline.toml")).unwrap();
    let e = failed(&score(&mixed, &input, &out, &[]));
    assert!(e.contains(&format!("{}: corrupt, or from another bundle", mixed.join("pipeline.toml").display())), "{e}");
    // ... with bundle.json's list of files made to agree: the fit records still differ.
    let other: Value = serde_json::from_str(&std::fs::read_to_string(other_fit.join("bundle.json")).unwrap()).unwrap();
    let record = mixed.join("bundle.json");
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    for (file, other_file) in json["files"].as_array_mut().unwrap().iter_mut().zip(other["files"].as_array().unwrap()) {
        if file["path"] == "pipeline.toml" {
            *file = other_file.clone();
        }
    }
    std::fs::write(&record, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let e = failed(&score(&mixed, &input, &out, &[]));
    assert!(
        e.contains(&format!("{}: the pipeline is not the one the models were fitted with", mixed.join("pipeline.toml").display())),
        "{e}"
    );
    assert!(e.contains("cubes: was context 2, size 32, h_block 1, w_block 1, now context 2, size 24"), "{e}");

    let config = vigil_scene::SceneConfig { seed: 4, videos: 1, frames_per_video: 40, width: 200, height: 120, ..Default::default() };
    let other = vigil_scene::generate(&config, &f.work.join("scene-200x120")).unwrap();
    let e = failed(&score(&f.model, &other.frames_root, &out, &[]));
    assert!(e.contains("frames are 200x120, but the model") && e.contains("was fitted on 240x160 frames"), "{e}");

    // Nothing listens on the discard port of the loopback interface.
    let e = failed(&score(&f.model, Path::new("http://127.0.0.1:9/cam"), &out, &[]));
    assert!(e.contains("http://127.0.0.1:9/cam cannot be opened as a video stream: Connection refused"), "{e}");

    let e = failed(&score(&f.work.join("no-such-model"), &input, &out, &[]));
    assert!(e.contains("no model bundle there"), "{e}");

    // A fit never writes into the data, nor replaces a folder that is not a bundle.
    let e = failed(&demo_command("fit", &f.work, &f.scene, &["--out", f.scene.frames_root.to_str().unwrap()]));
    assert!(e.contains("is inside the data folder"), "{e}");
    assert!(f.scene.frames_root.exists());
    let notes = f.work.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("todo.txt"), "keep me").unwrap();
    let e = failed(&demo_command("fit", &f.work, &f.scene, &["--out", notes.to_str().unwrap()]));
    assert!(e.contains("exists and is not a model bundle"), "{e}");
    assert!(notes.join("todo.txt").exists());
}

/// A pipeline that names its detector model relative to itself through
/// `..`, and has no flow stage: its bundle scores. (The bundle records the
/// path absolute, and once compared it with the relative one of the fit and
/// refused; scoring without a flow stage then panicked dropping flow pairs
/// it never held.)
#[test]
fn a_detector_model_named_by_a_relative_path_and_no_flow_stage_scores() {
    let Some(yolox) = vigil_stage_testkit::shared_data("models/yolox_nano.onnx") else { return };
    let work = PathBuf::from(vigil_stage_testkit::context("score-relative-detector").work_dir.to_string());
    let _ = std::fs::remove_dir_all(&work);
    let config = vigil_scene::SceneConfig { seed: 5, videos: 1, frames_per_video: 40, ..Default::default() };
    let scene = vigil_scene::generate(&config, &work.join("scene")).unwrap();
    std::fs::create_dir_all(work.join("models")).unwrap();
    std::fs::create_dir_all(work.join("pipelines")).unwrap();
    std::fs::copy(&yolox, work.join("models/yolox_nano.onnx")).unwrap();
    let pipeline = format!(
        r#"[pipeline]
name = "relative-detector"
seed = 7
[data]
test = "{}"
[cubes]
context = 2
size = 32
[report]
heatmaps = 0
[[stage]]
id = "decode"
plugin = "frames"
[[stage]]
id = "boxes"
plugin = "detector"
options = {{ model = "../models/yolox_nano.onnx", motion_source = "frame_difference" }}
[[stage]]
id = "appearance"
plugin = "cae"
options = {{ target = "frames", epochs = 1, features_root = 8, batch_size = 64 }}
[[stage]]
id = "score"
plugin = "zscore"
"#,
        scene.frames_root.display()
    );
    std::fs::write(work.join("pipelines/relative.toml"), pipeline).unwrap();
    // Run from the work folder, so that the pipeline's own path is relative too.
    let run = |list: &[&str]| {
        let args: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        vigil_command_in(&work, &args).current_dir(&work).output().expect("run vigil")
    };
    succeeded(&run(&["fit", "pipelines/relative.toml", "--out", "model"]));
    let recorded = std::fs::read_to_string(work.join("model/pipeline.toml")).unwrap();
    let absolute = work.join("models/yolox_nano.onnx").canonicalize().unwrap();
    assert!(recorded.contains(&format!("model = \"{}\"", absolute.display())), "{recorded}");
    succeeded(&run(&["score", "model", scene.frames_root.to_str().unwrap(), "--out", "scored"]));
    let scored = scores(&work.join("scored"));
    assert_eq!(scored.len(), 40, "every frame scored");
}
