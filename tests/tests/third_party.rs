//! The third-party plugin of docs/examples replaces the stock localizer of
//! the demo pipeline by changing one line, and the pipeline runs; a model
//! fitted with it scores new footage with it.

use serde_json::Value;
use vigil_tests::*;

#[test]
fn a_third_party_localizer_replaces_the_stock_one_by_changing_one_line() {
    let library = third_party_plugin();
    let work = std::path::PathBuf::from(vigil_stage_testkit::context("third-party").work_dir.to_string());
    let _ = std::fs::remove_dir_all(&work);
    let config = vigil_scene::SceneConfig { seed: 3, videos: 3, frames_per_video: 60, ..Default::default() };
    let scene = vigil_scene::generate(&config, &work.join("scene")).unwrap();

    let stock = std::fs::read_to_string(repo_root().join("pipelines/demo.toml")).unwrap();
    assert_eq!(stock.matches("plugin = \"motion\"").count(), 1);
    let swapped = stock.replace("plugin = \"motion\"", "plugin = \"framediff\"");
    let changed: Vec<_> = stock.lines().zip(swapped.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 1, "exactly one line differs");
    let file = work.join("framediff.toml");
    std::fs::write(&file, swapped).unwrap();

    let set = |k: &str, v: &std::path::Path| format!("{k}={}", v.display());
    let args_owned = [
        "run".to_string(),
        file.display().to_string(),
        "--out".into(),
        work.join("out").display().to_string(),
        "--set".into(),
        set("data.test", &scene.frames_root),
        "--set".into(),
        set("data.labels", &scene.labels),
        "--set".into(),
        "stage.appearance.options.epochs=4".into(),
        "--set".into(),
        "stage.motion.options.epochs=4".into(),
        "--no-cache".into(),
    ];
    let args: Vec<&str> = args_owned.iter().map(String::as_str).collect();
    // VIGIL_PLUGIN_PATH may name folders or single library files.
    let run = vigil_with_env(&args, &[("VIGIL_PLUGIN_PATH", library.to_str().unwrap())]);
    assert!(run.status.success(), "{}\n{}", text(&run.stdout), text(&run.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(work.join("out/report.json")).unwrap()).unwrap();
    let boxes = report["stages"].as_array().unwrap().iter().find(|s| s["id"] == "boxes").unwrap();
    assert_eq!(boxes["plugin"], "framediff");
    assert!(boxes["library"].as_str().unwrap().contains("framediff"));
    assert!(report["cubes"]["count"].as_u64().unwrap() > 0, "framediff found no boxes");
    assert!(report["metrics"]["auroc"].as_f64().is_some());

    // Fit once, score later: the bundle names the third-party stage, and scoring finds it the same way.
    let model = work.join("model");
    let mut fit_args: Vec<String> = args_owned.to_vec();
    fit_args[0] = "fit".into();
    fit_args[3] = model.display().to_string();
    let fit_args: Vec<&str> = fit_args.iter().map(String::as_str).collect();
    let fit = vigil_with_env(&fit_args, &[("VIGIL_PLUGIN_PATH", library.to_str().unwrap())]);
    assert!(fit.status.success(), "{}\n{}", text(&fit.stdout), text(&fit.stderr));
    let bundle = std::fs::read_to_string(model.join("bundle.json")).unwrap();
    assert!(bundle.contains("\"plugin\": \"framediff\""), "{bundle}");
    let scored = work.join("scored");
    let score_args = ["score", model.to_str().unwrap(), scene.frames_root.to_str().unwrap(), "--out", scored.to_str().unwrap()];
    let score = vigil_with_env(&score_args, &[("VIGIL_PLUGIN_PATH", library.to_str().unwrap())]);
    assert!(score.status.success(), "{}\n{}", text(&score.stdout), text(&score.stderr));
    let rows = std::fs::read_to_string(scored.join("scores.csv")).unwrap().lines().count();
    assert_eq!(rows, 3 * 60 + 1, "one row per frame");
    let without = vigil(&score_args);
    assert_eq!(without.status.code(), Some(1), "without the plugin the bundle cannot be scored");
    assert!(text(&without.stderr).contains("framediff"), "{}", text(&without.stderr));
}
