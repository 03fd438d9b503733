//! The extraction cache: a second run reuses flow and boxes and says so; a
//! changed localizer option recomputes the boxes but keeps the flow.

use serde_json::Value;
use std::path::Path;
use vigil_tests::*;

fn run(work: &Path, scene: &vigil_scene::SceneSummary, out: &str, extra: &[&str]) -> (Value, String) {
    let out_dir = work.join(out);
    let mut args: Vec<String> =
        vec!["run".into(), repo_root().join("pipelines/demo.toml").display().to_string(), "--out".into(), out_dir.display().to_string()];
    let sets = [
        format!("data.test={}", scene.frames_root.display()),
        format!("data.labels={}", scene.labels.display()),
        "stage.appearance.options.epochs=1".to_string(),
        "stage.motion.options.epochs=1".to_string(),
    ];
    for set in sets.iter().map(String::as_str).chain(extra.iter().copied()) {
        args.extend(["--set".to_string(), set.to_string()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let cache = work.join("cache").display().to_string();
    let result = vigil_with_env(&refs, &[("VIGIL_CACHE_DIR", &cache), ("VIGIL_LOG", "info")]);
    let stderr = text(&result.stderr);
    assert!(result.status.success(), "{}\n{stderr}", text(&result.stdout));
    let report = serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap()).unwrap();
    (report, stderr)
}

#[test]
fn a_second_run_reuses_flow_and_boxes_and_an_option_change_recomputes_only_boxes() {
    let work = std::path::PathBuf::from(vigil_stage_testkit::context("cache-e2e").work_dir.to_string());
    let _ = std::fs::remove_dir_all(&work);
    let config = vigil_scene::SceneConfig { seed: 5, videos: 2, frames_per_video: 40, ..Default::default() };
    let scene = vigil_scene::generate(&config, &work.join("scene")).unwrap();

    let (first, _) = run(&work, &scene, "first", &[]);
    assert_eq!(first["cache"]["flow_reused"], 0);
    assert_eq!(first["cache"]["boxes_reused"], 0);

    let (second, log) = run(&work, &scene, "second", &[]);
    assert_eq!(second["cache"]["flow_reused"], 2, "{log}");
    assert_eq!(second["cache"]["boxes_reused"], 2);
    assert!(log.contains("from the cache: flow of 2 videos, boxes of 2"), "the run must say it reused the cache:\n{log}");
    assert_eq!(first["cubes"]["count"], second["cubes"]["count"]);

    let (third, _) = run(&work, &scene, "third", &["stage.boxes.options.min_area=400"]);
    assert_eq!(third["cache"]["flow_reused"], 2);
    assert_eq!(third["cache"]["boxes_reused"], 0);
}
