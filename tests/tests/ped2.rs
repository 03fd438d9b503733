//! LBR-SPR on the real UCSD Ped2 test set, end to end through `vigil run`:
//! the fast pipeline (shortened further for CI: fewer epochs) must score
//! frames well above chance against the official ground truth.

use serde_json::Value;
use vigil_stage_testkit::shared_data;
use vigil_tests::*;

#[test]
fn ped2_fast_finds_the_anomalies_of_ucsd_ped2() {
    let (Some(frames), Some(labels), Some(model)) =
        (shared_data("ped2/testing/frames"), shared_data("ped2/ped2.mat"), shared_data("models/yolox_nano.onnx"))
    else {
        return;
    };
    let out = std::path::PathBuf::from(vigil_stage_testkit::context("ped2-e2e").work_dir.to_string());
    let _ = std::fs::remove_dir_all(&out);
    let pipeline = repo_root().join("pipelines/ped2-fast.toml").display().to_string();
    let sets = [
        format!("data.test={}", frames.display()),
        format!("data.labels={}", labels.display()),
        format!("stage.boxes.options.model={}", model.display()),
        // CI has 2 cores and other tests to run: fewer epochs than ped2-fast.
        "stage.appearance.options.epochs=4".to_string(),
        "stage.spr.options.warmup_epochs=1".to_string(),
    ];
    let mut args = vec!["run".to_string(), pipeline, "--out".into(), out.display().to_string()];
    for set in sets {
        args.extend(["--set".to_string(), set]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let run = vigil(&refs);
    assert!(run.status.success(), "{}\n{}", text(&run.stdout), text(&run.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let m = &report["metrics"];
    println!(
        "ped2 (ped2-fast, 4 epochs): frame AUROC {:.4}, mean per video {}, EER {:.4}, PR-AUC {:.4}, pixel AUROC {}, {} cubes, {:.0} s",
        m["auroc"].as_f64().unwrap(),
        m["auroc_video_mean"],
        m["eer"].as_f64().unwrap(),
        m["pr_auc"].as_f64().unwrap(),
        m["pixel_auroc"],
        report["cubes"]["count"],
        started.elapsed().as_secs_f64()
    );
    assert_eq!(m["frames"], 2010);
    assert_eq!(m["anomalous_frames"], 1648);
    let auroc = m["auroc"].as_f64().unwrap();
    assert!(auroc >= 0.80, "frame AUROC {auroc} on Ped2 is not well above chance");
}
