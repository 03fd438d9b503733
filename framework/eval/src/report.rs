//! The run's result files: `scores.csv`, `boxes.csv` and `report.json`,
//! written atomically.

use crate::metrics::{Metrics, VideoSeries};
use crate::{write_atomic, EvalError};
use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::path::Path;

/// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// `video,frame,score,label` with one row per frame (frame 0-based, label
/// 1/0, empty when the video has no labels).
pub fn scores_csv(videos: &[VideoSeries<'_>]) -> Result<String, EvalError> {
    let mut out = String::from(SCORES_HEADER);
    for video in videos {
        let labels = match video.labels {
            Some(_) => Some(video.require_labels()?),
            None => None,
        };
        for (frame, &score) in video.scores.iter().enumerate() {
            let label = labels.map_or("", |l| if l[frame] { "1" } else { "0" });
            push_score_row(&mut out, video.name, frame, score, label);
        }
    }
    Ok(out)
}

/// The header line of `scores.csv`.
pub const SCORES_HEADER: &str = "video,frame,score,label\n";

/// One line of `scores.csv` (`label` "1", "0" or "" when unknown).
pub fn push_score_row(out: &mut String, video: &str, frame: usize, score: f32, label: &str) {
    // `{}` prints the shortest text that reads back as the same f32.
    let _ = writeln!(out, "{},{frame},{score},{label}", csv_field(video));
}

pub fn write_scores_csv(path: impl AsRef<Path>, videos: &[VideoSeries<'_>]) -> Result<(), EvalError> {
    write_text(path.as_ref(), &scores_csv(videos)?)
}

fn write_text(path: &Path, text: &str) -> Result<(), EvalError> {
    write_atomic(path, text.as_bytes()).map_err(|source| EvalError::Write { path: path.to_path_buf(), source })
}

/// One scored box: where it is, where it came from and what it scored.
pub struct BoxRow<'a> {
    pub video: &'a str,
    pub frame: u32,
    /// x1, y1, x2, y2 in frame pixels.
    pub region: [f32; 4],
    /// Detector class, -1 for boxes that did not come from a classifier
    /// (motion completion, the `motion` localizer).
    pub class: i32,
    /// The localizer's confidence.
    pub confidence: f32,
    /// The model (spatial band) that scored it.
    pub band: u32,
    /// Its fused z-score, the value painted into the frame's score map.
    pub score: f32,
    /// Its reconstruction error under each reconstructor, in the order of
    /// the `error_names` given to [`boxes_csv`].
    pub errors: Vec<f32>,
}

/// `video,frame,x1,y1,x2,y2,class,confidence,band,score,error.<name>...`
/// with one row per scored box, so that what made a frame score high can be
/// looked up, and each reconstructor's share of it (`error_names` are the
/// reconstructors' stage ids; their raw errors, before z-normalization).
pub fn boxes_csv(rows: &[BoxRow<'_>], error_names: &[&str]) -> String {
    let mut out = boxes_header(error_names);
    for r in rows {
        push_box_row(&mut out, r);
    }
    out
}

/// The header line of `boxes.csv`.
pub fn boxes_header(error_names: &[&str]) -> String {
    let mut out = String::from("video,frame,x1,y1,x2,y2,class,confidence,band,score");
    for name in error_names {
        out.push(',');
        out.push_str(&csv_field(&format!("error.{name}")));
    }
    out.push('\n');
    out
}

/// One line of `boxes.csv`.
pub fn push_box_row(out: &mut String, r: &BoxRow<'_>) {
    let [x1, y1, x2, y2] = r.region;
    let _ = write!(out, "{},{},{x1},{y1},{x2},{y2},{},{},{},{}", csv_field(r.video), r.frame, r.class, r.confidence, r.band, r.score);
    for e in &r.errors {
        let _ = write!(out, ",{e}");
    }
    out.push('\n');
}

/// Writes [`boxes_csv`] to `path`, atomically.
pub fn write_boxes_csv(path: impl AsRef<Path>, rows: &[BoxRow<'_>], error_names: &[&str]) -> Result<(), EvalError> {
    write_text(path.as_ref(), &boxes_csv(rows, error_names))
}

/// The report object: `metrics` (when labels were given) followed by the
/// caller's own fields (pipeline, plugin versions, data, seed, timings, ...).
pub fn report_json(metrics: Option<&Metrics>, fields: Map<String, Value>) -> Result<Value, EvalError> {
    if fields.contains_key("metrics") {
        return Err(EvalError::invalid("report field `metrics` is reserved for the computed metrics"));
    }
    let mut out = Map::new();
    if let Some(m) = metrics {
        let value = serde_json::to_value(m).map_err(|e| EvalError::invalid(format!("metrics: {e}")))?;
        out.insert("metrics".into(), value);
    }
    out.extend(fields);
    Ok(Value::Object(out))
}

/// Writes [`report_json`] pretty-printed to `path`, atomically.
pub fn write_report(path: impl AsRef<Path>, metrics: Option<&Metrics>, fields: Map<String, Value>) -> Result<(), EvalError> {
    let path = path.as_ref();
    let value = report_json(metrics, fields)?;
    let mut text = serde_json::to_string_pretty(&value).map_err(|e| EvalError::invalid(format!("report: {e}")))?;
    text.push('\n');
    write_text(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_csv_has_one_row_per_box_and_quotes_names() {
        let row = |video, class, score| BoxRow {
            video,
            frame: 7,
            region: [1.5, 2.0, 30.0, 40.25],
            class,
            confidence: 0.5,
            band: 0,
            score,
            errors: vec![3.0, 0.25],
        };
        let text = boxes_csv(&[row("01", 0, 2.5), row("a,b", -1, -0.125)], &["appearance", "motion"]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "video,frame,x1,y1,x2,y2,class,confidence,band,score,error.appearance,error.motion",
                "01,7,1.5,2,30,40.25,0,0.5,0,2.5,3,0.25",
                "\"a,b\",7,1.5,2,30,40.25,-1,0.5,0,-0.125,3,0.25"
            ]
        );
    }
}
