//! `vigil bench accuracy` end to end on a small synthetic scene: one run per
//! seed into its own folder, the table on stdout, and `accuracy.json` whose
//! figures are those of each seed's own report.

use serde_json::Value;
use vigil_tests::*;

#[test]
fn bench_accuracy_runs_every_seed_and_reports_mean_spread_per_video_and_groups() {
    let root = std::path::PathBuf::from(vigil_stage_testkit::context("bench-accuracy").work_dir.to_string());
    let _ = std::fs::remove_dir_all(&root);
    let config = vigil_scene::SceneConfig { seed: 3, videos: 3, frames_per_video: 40, ..Default::default() };
    let scene = vigil_scene::generate(&config, &root.join("scene")).expect("scene");
    let out = root.join("acc");
    let pipeline = repo_root().join("pipelines/demo.toml");
    let sets = [
        format!("data.test={}", scene.frames_root.display()),
        format!("data.labels={}", scene.masks_root.display()),
        "stage.appearance.options.epochs=2".to_string(),
        "stage.motion.options.epochs=2".to_string(),
        "stage.spr.options.warmup_epochs=1".to_string(),
    ];
    let mut args =
        vec!["bench", "accuracy", pipeline.to_str().unwrap(), "--seeds", "2", "--first-seed", "5", "--out", out.to_str().unwrap()];
    for s in &sets {
        args.extend(["--set", s]);
    }
    args.extend(["--group", "first=01", "--group", "02,03"]);
    let run = vigil(&args);
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "bench accuracy failed:\n{stdout}\n{}", text(&run.stderr));
    println!("{stdout}");
    assert!(stdout.contains("AUROC over 2 seeds: "), "{stdout}");
    assert!(stdout.contains("per video"), "{stdout}");

    let summary: Value = serde_json::from_str(&std::fs::read_to_string(out.join("accuracy.json")).unwrap()).unwrap();
    let seeds = summary["seeds"].as_array().unwrap();
    assert_eq!(seeds.iter().map(|s| s["seed"].as_u64().unwrap()).collect::<Vec<_>>(), [5, 6]);
    for s in seeds {
        let seed = s["seed"].as_u64().unwrap();
        let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join(format!("seed-{seed}/report.json"))).unwrap()).unwrap();
        assert_eq!(report["seed"].as_u64(), Some(seed), "each run trains with its own seed");
        let auroc = s["auroc"].as_f64().unwrap();
        assert!((auroc - report["metrics"]["auroc"].as_f64().unwrap()).abs() < 1e-9, "the bench reads the run's own figures");
        let groups = s["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[1][0], "02-03");
        assert!(!s["per_video"].as_object().unwrap().is_empty());
    }
}
