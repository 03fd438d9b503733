//! vigil-eval's metrics against scikit-learn. The vectors and expected
//! values in fixtures/sklearn_metrics.json were made by
//! fixtures/make_fixtures.py with scikit-learn's `roc_auc_score`,
//! `average_precision_score` and `roc_curve`, and scipy's
//! `brentq(1 - x - interp1d(fpr, tpr)(x))` for the EER (versions are
//! recorded in the file). Every value must agree to 1e-9.

use serde_json::Value;
use vigil_eval::{frame_metrics, PixelAuroc, RankedCounts, VideoSeries};

const TOLERANCE: f64 = 1e-9;

struct Case {
    name: String,
    scores: Vec<f64>,
    labels: Vec<bool>,
    json: Value,
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("a list of numbers").iter().map(|x| x.as_f64().expect("a number")).collect()
}

fn cases() -> Vec<Case> {
    let text = include_str!("fixtures/sklearn_metrics.json");
    let root: Value = serde_json::from_str(text).expect("fixture is JSON");
    root["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            scores: floats(&c["scores"]),
            labels: c["labels"].as_array().unwrap().iter().map(|l| l.as_i64() == Some(1)).collect(),
            json: c.clone(),
        })
        .collect()
}

fn close(name: &str, what: &str, ours: f64, theirs: f64) {
    assert!((ours - theirs).abs() <= TOLERANCE, "{name}: {what} is {ours}, scikit-learn says {theirs}");
}

#[test]
fn fixture_covers_the_promised_cases() {
    let names: Vec<String> = cases().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["random", "heavy_ties", "all_equal", "imbalanced", "ped2_like"]);
    assert_eq!(cases()[4].scores.len(), 2010);
}

#[test]
fn auroc_average_precision_and_eer_match() {
    for c in cases() {
        let counts = RankedCounts::from_samples(&c.scores, &c.labels).unwrap();
        close(&c.name, "AUROC", counts.auroc().unwrap(), c.json["auroc"].as_f64().unwrap());
        close(&c.name, "AP", counts.average_precision().unwrap(), c.json["average_precision"].as_f64().unwrap());
        close(&c.name, "EER", counts.eer().unwrap(), c.json["eer"].as_f64().unwrap());
    }
}

#[test]
fn roc_curve_points_match_including_dropped_intermediates() {
    for c in cases() {
        let roc = RankedCounts::from_samples(&c.scores, &c.labels).unwrap().roc_curve().unwrap();
        let (fpr, tpr, thr) = (floats(&c.json["roc_fpr"]), floats(&c.json["roc_tpr"]), floats(&c.json["roc_thresholds"]));
        assert_eq!(roc.fpr.len(), fpr.len(), "{}: number of ROC points", c.name);
        for i in 0..fpr.len() {
            close(&c.name, &format!("fpr[{i}]"), roc.fpr[i], fpr[i]);
            close(&c.name, &format!("tpr[{i}]"), roc.tpr[i], tpr[i]);
        }
        assert_eq!(roc.thresholds[0], f64::INFINITY);
        assert_eq!(&roc.thresholds[1..], thr.as_slice(), "{}: thresholds", c.name);
    }
}

#[test]
fn pixel_auroc_streamed_in_frames_matches() {
    // The same samples, cut into "frames" of 37 pixels and added one by one.
    for c in cases() {
        let mut pixel = PixelAuroc::new();
        let scores: Vec<f32> = c.scores.iter().map(|&s| s as f32).collect();
        for (s, m) in scores.chunks(37).zip(c.labels.chunks(37)) {
            pixel.add_frame(s, m).unwrap();
        }
        // f32 rounding could merge distinct f64 scores; compare with the
        // pooled AUROC of the rounded scores, and with scikit-learn when
        // the scores were f32 to begin with.
        let pooled = RankedCounts::from_samples(&scores, &c.labels).unwrap().auroc().unwrap();
        close(&c.name, "pixel AUROC", pixel.auroc().unwrap(), pooled);
        if c.name == "ped2_like" {
            close(&c.name, "pixel AUROC", pixel.auroc().unwrap(), c.json["auroc"].as_f64().unwrap());
        }
    }
}

#[test]
fn ped2_like_frame_metrics_match_including_the_per_video_mean() {
    let c = cases().into_iter().find(|c| c.name == "ped2_like").unwrap();
    let lengths: Vec<usize> = c.json["video_lengths"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let scores: Vec<f32> = c.scores.iter().map(|&s| s as f32).collect();
    let names: Vec<String> = (0..lengths.len()).map(|v| format!("{:02}", v + 1)).collect();
    let mut videos = Vec::new();
    let mut start = 0;
    for (v, &n) in lengths.iter().enumerate() {
        videos.push(VideoSeries { name: &names[v], scores: &scores[start..start + n], labels: Some(&c.labels[start..start + n]) });
        start += n;
    }
    let m = frame_metrics(&videos).unwrap();
    close(&c.name, "AUROC", m.auroc.unwrap(), c.json["auroc"].as_f64().unwrap());
    close(&c.name, "mean video AUROC", m.auroc_video_mean.unwrap(), c.json["auroc_video_mean"].as_f64().unwrap());
    close(&c.name, "EER", m.eer.unwrap(), c.json["eer"].as_f64().unwrap());
    close(&c.name, "PR-AUC", m.pr_auc.unwrap(), c.json["average_precision"].as_f64().unwrap());
    let skipped: Vec<String> =
        c.json["videos_one_class"].as_array().unwrap().iter().map(|v| names[v.as_u64().unwrap() as usize].clone()).collect();
    assert_eq!(m.videos_one_class, skipped);
    assert_eq!(m.videos_in_mean, lengths.len() - skipped.len());
}
