//! scores.csv and report.json as files.

use serde_json::{json, Map, Value};
use vigil_eval::{frame_metrics, report_json, scores_csv, write_report, write_scores_csv, VideoSeries};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-eval-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn scores_csv_has_one_row_per_frame_and_quotes_odd_names() {
    let a = VideoSeries { name: "01", scores: &[0.5, -20.0], labels: Some(&[false, true]) };
    let b = VideoSeries { name: "cam, \"left\"", scores: &[1.25], labels: None };
    assert_eq!(scores_csv(&[a, b]).unwrap(), "video,frame,score,label\n01,0,0.5,0\n01,1,-20,1\n\"cam, \"\"left\"\"\",0,1.25,\n");
    let dir = temp_dir("csv");
    write_scores_csv(dir.join("scores.csv"), &[a]).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("scores.csv")).unwrap().lines().count(), 3);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn report_json_holds_metrics_and_the_caller_fields() {
    let a = VideoSeries { name: "01", scores: &[0.9, 0.1, 0.4], labels: Some(&[true, false, false]) };
    let mut metrics = frame_metrics(&[a]).unwrap();
    metrics.pixel_auroc = Some(0.75);
    let mut fields = Map::new();
    fields.insert("pipeline".into(), json!("ped2"));
    fields.insert("seed".into(), json!(0));
    fields.insert("timings_s".into(), json!({"decode": 1.5}));
    let dir = temp_dir("report");
    let path = dir.join("report.json");
    write_report(&path, Some(&metrics), fields.clone()).unwrap();
    let back: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(back["metrics"]["auroc"], json!(1.0));
    assert_eq!(back["metrics"]["pr_auc"], json!(1.0));
    assert_eq!(back["metrics"]["pixel_auroc"], json!(0.75));
    assert_eq!(back["metrics"]["videos_one_class"], json!([]));
    assert_eq!(back["pipeline"], json!("ped2"));
    assert_eq!(back["timings_s"]["decode"], json!(1.5));

    // Without labels there is no metrics object, and none may be passed in.
    assert!(report_json(None, fields.clone()).unwrap().get("metrics").is_none());
    metrics.pixel_auroc = None;
    let plain = report_json(Some(&metrics), Map::new()).unwrap();
    assert!(plain["metrics"].get("pixel_auroc").is_none());
    fields.insert("metrics".into(), json!(1));
    assert!(report_json(None, fields).unwrap_err().to_string().contains("reserved"));
    std::fs::remove_dir_all(dir).unwrap();
}
