//! The run's result files: `scores.csv` and `report.json`, written
//! atomically.

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
    let mut out = String::from("video,frame,score,label\n");
    for video in videos {
        let labels = match video.labels {
            Some(_) => Some(video.require_labels()?),
            None => None,
        };
        let name = csv_field(video.name);
        for (frame, score) in video.scores.iter().enumerate() {
            let label = labels.map_or("", |l| if l[frame] { "1" } else { "0" });
            // `{}` prints the shortest text that reads back as the same f32.
            let _ = writeln!(out, "{name},{frame},{score},{label}");
        }
    }
    Ok(out)
}

pub fn write_scores_csv(path: impl AsRef<Path>, videos: &[VideoSeries<'_>]) -> Result<(), EvalError> {
    let path = path.as_ref();
    let text = scores_csv(videos)?;
    write_atomic(path, text.as_bytes()).map_err(|source| EvalError::Write { path: path.to_path_buf(), source })
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
    write_atomic(path, text.as_bytes()).map_err(|source| EvalError::Write { path: path.to_path_buf(), source })
}
